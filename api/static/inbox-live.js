/* The officer inbox follows its change feed (GET /tasks/events, Server-Sent Events).
 *
 * The page carries the ETag of the listing it shows (data-inbox-etag) and the feed of that
 * listing (data-inbox-events). When the feed announces another ETag, the page is fetched
 * again and its parts marked data-live-part are swapped in, with a notice (待办有更新);
 * if that fails (a lost session, say), the page is reloaded. No inline script, no library.
 */
(function () {
  "use strict";

  var root = document.getElementById("inbox-live");
  if (!root || typeof window.EventSource !== "function" || typeof window.fetch !== "function") {
    return;
  }
  var notice = document.getElementById("inbox-live-notice");
  var shown = root.getAttribute("data-inbox-etag"); // the listing on screen
  var latest = shown; // the listing the feed last announced
  var loading = false;
  var reloading = false;

  function twoDigits(number) {
    return (number < 10 ? "0" : "") + number;
  }

  function announce() {
    if (!notice) {
      return;
    }
    var now = new Date();
    notice.textContent = "待办有更新 · " + twoDigits(now.getHours()) + ":" + twoDigits(now.getMinutes()) + " 已刷新";
    notice.hidden = false;
  }

  function swapIn(html) {
    var page = new DOMParser().parseFromString(html, "text/html");
    var fresh = page.getElementById("inbox-live");
    if (!fresh) {
      throw new Error("no inbox in the page");
    }
    var parts = root.querySelectorAll("[data-live-part]");
    for (var i = 0; i < parts.length; i += 1) {
      var replacement = page.getElementById(parts[i].id);
      if (!replacement) {
        throw new Error("missing part " + parts[i].id);
      }
      parts[i].replaceWith(document.importNode(replacement, true));
    }
    return fresh.getAttribute("data-inbox-etag");
  }

  function refresh() {
    if (loading || reloading || latest === shown) {
      return;
    }
    loading = true;
    var wanted = latest;
    window.fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok || response.redirected) {
          throw new Error("inbox page answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        shown = swapIn(html);
        root.setAttribute("data-inbox-etag", shown);
        // The page read the versions after the feed did, so it is at least as new: unless
        // the feed announced yet another listing meanwhile, this is the one to keep.
        if (latest === wanted) {
          latest = shown;
        }
        announce();
      })
      .catch(function () {
        reloading = true;
        window.location.reload();
      })
      .finally(function () {
        loading = false;
        refresh();
      });
  }

  var source = new window.EventSource(root.getAttribute("data-inbox-events"));
  source.addEventListener("inbox", function (event) {
    var etag;
    try {
      etag = JSON.parse(event.data).etag;
    } catch (error) {
      return;
    }
    if (typeof etag === "string") {
      latest = etag;
      refresh();
    }
  });
  // A browser keeps few connections per server: let go of this one when the page goes.
  window.addEventListener("pagehide", function () {
    source.close();
  });
})();
