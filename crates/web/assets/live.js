// Live view: fragmented MP4 over a WebSocket into Media Source Extensions.
// Keeps well under a second behind live (plays a little faster when
// behind, jumps ahead when far behind), trims old buffer, and reconnects
// by itself — except when the hub closed it because access ended (code
// 1008: it shows the hub's reason instead).
"use strict";
(function () {
  const MAX_LAG = 0.7; // seconds between the newest frame received and the one shown
  for (const video of document.querySelectorAll("video[data-live]")) start(video);

  function start(video) {
    const camera = video.dataset.live;
    const status = document.querySelector(`[data-live-status="${camera}"]`);
    const say = (t) => { if (status) status.textContent = t; };
    let retry = 500;

    function connect() {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(`${proto}//${location.host}/api/v1/cameras/${encodeURIComponent(camera)}/live`);
      ws.binaryType = "arraybuffer";
      let sb = null;
      let queue = [];
      say("connecting…");

      ws.onmessage = (ev) => {
        if (typeof ev.data === "string") {
          const m = JSON.parse(ev.data);
          if (m.type !== "init") return;
          const mime = `video/mp4; codecs="${m.codec}"`;
          if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
            say(`this browser cannot play ${m.codec}`);
            ws.close();
            return;
          }
          sb = null;
          queue = [];
          const ms = new MediaSource();
          video.src = URL.createObjectURL(ms);
          ms.addEventListener("sourceopen", () => {
            sb = ms.addSourceBuffer(mime);
            sb.mode = "segments";
            sb.addEventListener("updateend", pump);
            pump();
          }, { once: true });
          return;
        }
        queue.push(ev.data);
        if (queue.length > 300) queue.splice(1, queue.length - 150); // stalled tab: drop
        pump();
      };
      ws.onopen = () => { retry = 500; say("live"); };
      ws.onclose = (ev) => {
        if (ev.code === 1008) {
          // The hub ended this view: access revoked, signed out, account
          // disabled, camera paused. Say why; reconnecting would be refused.
          say(`stopped: ${ev.reason || "access ended"}`);
          return;
        }
        say("reconnecting…");
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 5000);
      };

      function pump() {
        if (!sb || sb.updating) return;
        keepLive();
        if (queue.length === 0 || sb.updating) return;
        try {
          sb.appendBuffer(queue.shift());
        } catch (e) {
          ws.close(); // QuotaExceeded or a decode error: start afresh
        }
      }

      // Live means live: speed up a little when behind, jump when far
      // behind, and drop what was watched long ago.
      function keepLive() {
        const b = video.buffered;
        if (!b.length) return;
        const end = b.end(b.length - 1);
        const lag = end - video.currentTime;
        if (lag > MAX_LAG) video.currentTime = Math.max(b.start(b.length - 1), end - 0.15);
        video.playbackRate = lag > 0.35 ? 1.15 : 1.0;
        if (video.paused) video.play().catch(() => {});
        if (video.currentTime - b.start(0) > 20) sb.remove(b.start(0), video.currentTime - 10);
      }
    }
    connect();
  }
})();
