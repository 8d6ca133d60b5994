/*
 * reslab's stand-in for the iframe-worker shim that Material's offline plugin would otherwise load from
 * https://unpkg.com/iframe-worker/shim (mkdocs.yml names this file under extra.polyfills, so the plugin adds
 * no script of its own and a built page fetches nothing from the network).
 *
 * A browser refuses to start a Web Worker from a file:// page. There, and only there, this replaces Worker with
 * one that runs the worker's script in a hidden same-origin iframe: postMessage, the "message" event and
 * importScripts are passed across. Served over http(s), it does nothing.
 */
(function () {
  "use strict";
  if (location.protocol !== "file:" || typeof EventTarget !== "function") return;

  function loadScript(doc, url) {
    return new Promise(function (resolve, reject) {
      var script = doc.createElement("script");
      script.src = url;
      script.onload = resolve;
      script.onerror = function () { reject(new Error("cannot load " + url)); };
      doc.head.appendChild(script);
    });
  }

  class IframeWorker extends EventTarget {
    constructor(url) {
      super();
      var self = this;
      var base = new URL(String(url), location.href);
      this.queue = [];
      this.iframe = document.createElement("iframe");
      this.iframe.hidden = true;
      this.iframe.setAttribute("aria-hidden", "true");
      document.body.appendChild(this.iframe); // about:blank: this page's origin, available at once
      var scope = this.iframe.contentWindow;
      scope.postMessage = function (data) { // the worker's postMessage: to the page
        setTimeout(function () {
          var event = new MessageEvent("message", { data: data });
          self.dispatchEvent(event);
          if (typeof self.onmessage === "function") self.onmessage(event);
        });
      };
      scope.importScripts = function () { // in order; the worker awaits the promise
        var urls = Array.prototype.slice.call(arguments);
        return urls.reduce(function (done, next) {
          return done.then(function () { return loadScript(scope.document, new URL(next, base).href); });
        }, Promise.resolve());
      };
      loadScript(scope.document, base.href).then(function () {
        self.ready = true;
        self.queue.splice(0).forEach(function (data) { self.postMessage(data); });
      }, function (error) {
        self.dispatchEvent(new ErrorEvent("error", { message: error.message }));
      });
    }

    postMessage(data) { // the page's postMessage: to the worker's "message" listeners
      if (!this.ready) {
        this.queue.push(data);
        return;
      }
      var scope = this.iframe.contentWindow;
      setTimeout(function () { scope.dispatchEvent(new scope.MessageEvent("message", { data: data })); });
    }

    terminate() {
      this.iframe.remove();
    }
  }

  window.Worker = IframeWorker;
})();
