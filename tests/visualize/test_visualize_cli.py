"""``reslab visualize ...`` as a user meets it: real checkpoint and image files, PNGs out, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PIL import Image

from reslab.cli import main


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_png(path):
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 100 and img.size[1] > 100


@pytest.mark.parametrize(
    "what, extra, said",
    [
        ("filters", [], "4 filters of conv1"),
        ("features", ["--image", "{png}", "--layer", "layer1.0.conv1", "--channels", "0,2"], "2 of 4 maps"),
        ("gradcam", ["--image", "{png}", "--target", "class_2"], "class class_2 (p="),
        ("gradcam", ["--image", "{png}", "--target", "1", "--layer", "layer2"], "class class_1 (p="),
        ("occlusion", ["--image", "{png}", "--patch", "4", "--stride", "2"], "unoccluded"),
        ("deconv", ["--layer", "layer2", "--channels", "0,1", "--top", "3"], "guided backpropagation, layer layer2"),
    ],
)
def test_each_command_writes_its_picture(what, extra, said, tiny_run, png, tmp_path, capsys):
    out = tmp_path / f"{what}.png"
    argv = ["visualize", what, "--checkpoint", str(tiny_run), "--out", str(out)]
    argv += [a.replace("{png}", str(png)) for a in extra]
    code, stdout, stderr = run(argv, capsys)
    assert code == 0, stderr
    assert said in stdout and f"wrote {out}" in stdout
    assert_png(out)


def test_deconv_on_a_zf_style_network_says_deconvnet(tmp_path, capsys):
    ckpt = tmp_path / "lenet"
    code = main(
        [
            "train",
            "--model",
            "lenet5_wide",
            "--data",
            "digits",
            "--image-size",
            "28",
            "--epochs",
            "1",
            "--data-arg",
            "limit=64",
            "--batch-size",
            "32",
            "--device",
            "cpu",
            "--progress",
            "none",
            "--out",
            str(ckpt),
            "-q",
        ]
    )
    assert code == 0
    capsys.readouterr()
    out = tmp_path / "deconv.png"
    code, stdout, stderr = run(
        ["visualize", "deconv", "--checkpoint", str(ckpt), "--layer", "s4", "--channels", "0-2", "--out", str(out)],
        capsys,
    )
    assert code == 0, stderr
    assert "deconvnet, layer s4, maps 0,1,2" in stdout
    assert_png(out)


def test_untrained_registry_model(tmp_path, capsys):
    out = tmp_path / "filters.png"
    code, stdout, _ = run(["visualize", "filters", "--model", "lenet5", "--out", str(out)], capsys)
    assert code == 0 and "6 filters of c1" in stdout
    assert_png(out)


def one_line_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:  # argparse's errors
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1
    return err


def test_bad_input_gives_one_line_errors(tiny_run, png, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    base = ["visualize", "gradcam", "--checkpoint", str(tiny_run), "--out", out]
    cases = [
        (base + ["--image", str(tmp_path / "missing.png")], "missing.png not found"),
        (base + ["--image", str(tmp_path)], "is a directory, not an image file"),
        (base + ["--image", str(png), "--layer", "layer9"], "resnet20 has no layer 'layer9'"),
        (base + ["--image", str(png), "--target", "zebra"], "unknown class 'zebra'"),
        (base + ["--image", str(png), "--target", "9"], "index 0-3"),
        (
            ["visualize", "filters", "--checkpoint", str(tiny_run), "--out", str(tmp_path / "no" / "f.png")],
            "the folder",
        ),
        (["visualize", "filters", "--checkpoint", str(tiny_run), "--out", str(tmp_path)], "is a directory"),
        (["visualize", "filters", "--checkpoint", str(tiny_run), "--out", str(tmp_path / "f.xyz")], "cannot write"),
        (["visualize", "filters", "--checkpoint", str(tmp_path / "none.pt"), "--out", out], "not found"),
        (["visualize", "filters", "--model", "resnet20", "--pretrained", "nosuchtag", "--out", out], "nosuchtag"),
        (
            [
                "visualize",
                "features",
                "--checkpoint",
                str(tiny_run),
                "--image",
                str(png),
                "--layer",
                "layer1",
                "--channels",
                "0,40",
                "--out",
                out,
            ],
            "has 4 feature maps (0-3), got --channels 40",
        ),
        (
            ["visualize", "deconv", "--checkpoint", str(tiny_run), "--layer", "fc", "--out", out],
            "not a (N, C, H, W) feature map",
        ),
    ]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG but not really")
    cases.append((base + ["--image", str(bad)], "bad.png"))
    for argv, expected in cases:
        code, stdout, err = run(argv, capsys)
        assert code == 2, (argv, err)
        assert err.startswith("reslab: error: ") and expected in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
    assert not os.path.exists(out)
    # both / neither of --checkpoint and --model; a bad --channels: argparse, one line
    assert "not allowed with" in one_line_error(
        ["visualize", "filters", "--checkpoint", str(tiny_run), "--model", "resnet20", "--out", out], capsys
    )
    assert "one of the arguments --checkpoint --model is required" in one_line_error(
        ["visualize", "filters", "--out", out], capsys
    )
    assert "expected channel numbers" in one_line_error(
        ["visualize", "deconv", "--checkpoint", str(tiny_run), "--layer", "layer1", "--channels", "a", "--out", out],
        capsys,
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_out_folder_is_refused_before_any_work(tiny_run, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, _, err = run(
            ["visualize", "filters", "--checkpoint", str(tiny_run), "--out", str(folder / "f.png")], capsys
        )
    finally:
        folder.chmod(0o700)
    assert code == 2 and "not writable" in err


def test_a_previous_picture_survives_a_failed_command(tiny_run, png, tmp_path, capsys):
    out = tmp_path / "keep.png"
    out.write_bytes(b"the user's picture")
    code, _, _ = run(
        [
            "visualize",
            "gradcam",
            "--checkpoint",
            str(tiny_run),
            "--image",
            str(png),
            "--layer",
            "nope",
            "--out",
            str(out),
            "--overwrite",
        ],
        capsys,
    )
    assert code == 2 and out.read_bytes() == b"the user's picture"


def test_an_existing_file_is_kept_unless_overwrite_and_an_input_always(tiny_run, png, tmp_path, capsys):
    out = tmp_path / "mine.png"
    out.write_bytes(b"the user's picture")
    argv = ["visualize", "gradcam", "--checkpoint", str(tiny_run), "--image", str(png)]
    code, _, err = run([*argv, "--out", str(out)], capsys)
    assert code == 2 and out.read_bytes() == b"the user's picture"
    assert err.strip().endswith(f"--out {out} exists; it is left as it is: choose another --out or pass --overwrite")
    assert len(err.strip().splitlines()) == 1
    before = png.read_bytes()
    code, _, err = run([*argv, "--out", str(png), "--overwrite"], capsys)
    assert code == 2 and png.read_bytes() == before and f"--out {png} is the input {png}" in err
    code, _, err = run(["visualize", "filters", "--checkpoint", str(tiny_run), "--out", str(tiny_run)], capsys)
    assert code == 2 and "is a directory" in err  # a run directory
    code, stdout, err = run([*argv, "--out", str(out), "--overwrite"], capsys)
    assert code == 0, err
    assert_png(out)


def test_subprocess_entry_point(tiny_run, png, tmp_path):
    out = tmp_path / "g.png"
    argv = ["visualize", "gradcam", "--checkpoint", str(tiny_run), "--image", str(png), "--out", str(out)]
    proc = subprocess.run([sys.executable, "-m", "reslab", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert_png(out)


def test_titles_show_the_last_two_parts_of_long_paths():
    # a full absolute path overflowed the pictures' titles
    from reslab.cli.visualize import _short

    assert _short("/work/vis-runs/resnet20-mini/best.pt") == "resnet20-mini/best.pt"
    assert _short("photo.png") == "photo.png"
    assert _short("C:\\data\\cats\\tom.png") == "cats/tom.png"
