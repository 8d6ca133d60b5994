"""Downloads against a local HTTP server: MD5 verification, safe extraction, end-to-end build_data."""

from __future__ import annotations

import tarfile

import pytest

from reslab.data import build_data
from reslab.data.download import download_and_extract, download_file, extract_tar, md5sum
from reslab.data.sources import cifar, mnist
from reslab.errors import ChecksumError, DataError

from .fakes import make_tar, tar_directory, write_cifar10, write_mnist


@pytest.fixture
def served_cifar(tmp_path, http_dir):
    """A cifar-10-python.tar.gz-like archive of fake batches, served over HTTP: (url, md5)."""
    folder, base = http_dir
    write_cifar10(tmp_path / "src")
    archive = tar_directory(
        folder / "cifar-10-python.tar.gz", tmp_path / "src" / "cifar-10-batches-py", "cifar-10-batches-py"
    )
    return base + archive.name, md5sum(archive)


def test_good_checksum_is_downloaded_and_extracted(tmp_path, served_cifar):
    url, md5 = served_cifar
    dest = tmp_path / "data"
    archive = download_and_extract(url, dest, md5)
    assert archive == dest / "cifar-10-python.tar.gz" and md5sum(archive) == md5
    assert (dest / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert not list(dest.glob("*.part"))


def test_bad_checksum_is_rejected_and_nothing_is_kept(tmp_path, served_cifar):
    url, md5 = served_cifar
    dest = tmp_path / "data"
    wrong = "0" * 32
    with pytest.raises(ChecksumError) as err:
        download_and_extract(url, dest, wrong)
    msg = str(err.value)
    assert "cifar-10-python.tar.gz" in msg and wrong in msg and md5 in msg
    assert list(dest.iterdir()) == []  # neither the archive nor its contents


def test_build_data_downloads_cifar10(tmp_path, served_cifar, monkeypatch):
    url, md5 = served_cifar
    monkeypatch.setitem(cifar.ARCHIVES["cifar10"], "md5", md5)  # production uses the official MD5
    with pytest.raises(DataError, match="--download"):
        build_data("cifar10", tmp_path / "data")
    b = build_data("cifar10", tmp_path / "data", download=True, url=url)
    assert b.train.num_samples == 30 and b.val.num_samples == 8
    # second build finds the extracted folder and does not download again
    b2 = build_data("cifar10", tmp_path / "data", download=True, url="http://127.0.0.1:9/unreachable")
    assert b2.train.num_samples == 30


def test_build_data_rejects_tampered_cifar_archive(tmp_path, served_cifar):
    url, _ = served_cifar  # the official MD5 cannot match the fake archive
    with pytest.raises(ChecksumError, match=cifar.ARCHIVES["cifar10"]["md5"]):
        build_data("cifar10", tmp_path / "data", download=True, url=url)
    assert not (tmp_path / "data" / "cifar-10-batches-py").exists()
    assert not (tmp_path / "data" / "cifar-10-python.tar.gz").exists()


def test_path_traversal_member_is_refused(tmp_path, http_dir):
    folder, base = http_dir
    archive = make_tar(folder / "evil.tar.gz", {"cifar-10-batches-py/ok": b"fine", "../evil": b"gotcha"})
    dest = tmp_path / "deep" / "data"
    with pytest.raises(DataError) as err:
        download_and_extract(base + "evil.tar.gz", dest, md5sum(archive))
    assert "../evil" in str(err.value) and "evil.tar.gz" in str(err.value)
    assert not (tmp_path / "deep" / "evil").exists()
    assert not (dest / "cifar-10-batches-py").exists()  # nothing at all is extracted from a bad archive


@pytest.mark.parametrize("name", ["/etc/evil", "a/../../evil"])
def test_absolute_and_nested_traversal_are_refused(tmp_path, name):
    archive = make_tar(tmp_path / "bad.tar.gz", {name: b"x"})
    with pytest.raises(DataError, match="outside"):
        extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_symlink_member_is_refused(tmp_path):
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DataError, match="link"):
        extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "cifar-10-batches-py" / "link").exists()


def test_unreachable_url_is_a_data_error(tmp_path, http_dir):
    _, base = http_dir
    with pytest.raises(DataError) as err:
        download_file(base + "missing.tar.gz", tmp_path / "x.tar.gz", None)
    assert "missing.tar.gz" in str(err.value) and "by hand" in str(err.value)
    assert not (tmp_path / "x.tar.gz").exists() and not (tmp_path / "x.tar.gz.part").exists()


def test_mnist_download_with_checksums(tmp_path, http_dir, monkeypatch):
    folder, base = http_dir
    write_mnist(folder)
    md5s = {f.name: md5sum(f) for f in folder.glob("*.gz")}
    monkeypatch.setitem(mnist.SOURCES["mnist"], "md5", md5s)
    b = build_data("mnist", tmp_path / "data", download=True, url=base)
    assert b.train.num_samples == 24
    assert sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir()) == sorted(md5s)


def test_mnist_download_bad_checksum_names_file(tmp_path, http_dir):
    folder, base = http_dir
    write_mnist(folder)
    with pytest.raises(ChecksumError) as err:
        build_data("mnist", tmp_path / "data", download=True, url=base)
    assert "train-images-idx3-ubyte.gz" in str(err.value) and "f68b3c2dcbeaaa9fbdd348bbdeb94873" in str(err.value)
    assert not any((tmp_path / "data" / "mnist").glob("train-images*"))
