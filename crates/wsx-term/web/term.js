// wsx term's page: one session over wsx.term.v1 (see the README). Every URL
// is relative, so the page works under a reverse proxy's sub-path.
(function () {
  "use strict";
  const PROTOCOL = "wsx.term.v1";
  const params = new URLSearchParams(location.search);
  let sessionId = params.get("session");
  let ticket = params.get("ticket");
  const $ = (id) => document.getElementById(id);
  const term = new Terminal({ cursorBlink: true, scrollback: 10000, fontFamily: "monospace", fontSize: 14 });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open($("terminal"));
  fit.fit();
  const enc = new TextEncoder();

  let ws = null;
  let role = null;
  // The next binary frame is a screen: "attach" (reset first) or "lagged"
  // (drawn over what we show, keeping our scrollback).
  let snapshotNext = null;
  let ended = false;
  let attempt = 0;
  let lastState = null;

  function conn(text, cls) {
    const el = $("conn");
    el.textContent = text;
    el.className = "conn " + cls;
  }

  function showState(state) {
    lastState = state;
    let text;
    if (state && typeof state === "object" && !Array.isArray(state)) {
      text = Object.entries(state).map(([k, v]) => k + ": " + (typeof v === "string" ? v : JSON.stringify(v))).join("  ·  ");
    } else {
      text = JSON.stringify(state);
    }
    $("state").textContent = text;
    $("state").title = JSON.stringify(state);
  }

  async function pickSession() {
    if (sessionId) return sessionId;
    const list = await fetch("api/sessions", { credentials: "same-origin" });
    if (!list.ok) throw new Error("listing sessions: HTTP " + list.status);
    const running = (await list.json()).find((s) => s.state === "running");
    if (running) return running.id;
    const created = await fetch("api/sessions", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ cols: term.cols, rows: term.rows }),
    });
    if (!created.ok) throw new Error("creating a session: " + (await created.text()));
    return (await created.json()).id;
  }

  function sendResize() {
    if (ws && ws.readyState === WebSocket.OPEN && role === "writer") {
      ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
    }
  }

  function onText(msg) {
    switch (msg.type) {
      case "hello":
        role = msg.role;
        attempt = 0;
        conn("connected", "ok");
        $("role").textContent = role;
        term.options.disableStdin = role !== "writer";
        break;
      case "snapshot":
        // The next binary frame is the screen, drawn for this size.
        snapshotNext = msg.reason;
        term.resize(msg.cols, msg.rows);
        break;
      case "resize":
        if (role !== "writer") term.resize(msg.cols, msg.rows);
        break;
      case "joined":
      case "left":
        $("viewers").textContent = msg.viewers + (msg.viewers === 1 ? " viewer" : " viewers");
        break;
      case "state":
        showState(msg.state);
        break;
      case "exit":
        ended = true;
        conn(msg.signal ? "killed by " + msg.signal : "exited, code " + msg.code, "bad");
        break;
      case "error":
        term.write("\r\n\x1b[31m[wsx term] " + msg.message + "\x1b[0m\r\n");
        break;
    }
  }

  function connect() {
    const path = "api/ws/sessions/" + encodeURIComponent(sessionId) + (ticket ? "?ticket=" + encodeURIComponent(ticket) : "");
    const url = new URL(path, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    // A ticket works once: a reconnect needs the cookie (or a new link).
    ticket = null;
    conn("connecting", "wait");
    ws = new WebSocket(url, [PROTOCOL]);
    ws.binaryType = "arraybuffer";
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        onText(JSON.parse(ev.data));
      } else if (snapshotNext) {
        const reason = snapshotNext;
        snapshotNext = null;
        if (reason !== "lagged") term.reset();
        term.write(new Uint8Array(ev.data), () => {
          // Our window decides the size: tell the PTY.
          if (role === "writer") {
            fit.fit();
            sendResize();
          }
        });
      } else {
        term.write(new Uint8Array(ev.data));
      }
    };
    ws.onclose = (ev) => {
      ws = null;
      if (ended) return;
      const final = { 4403: "forbidden", 4404: "no such session", 4429: "too many viewers" }[ev.code];
      if (final || ev.code === 1008) {
        conn(final ? final + ": " + ev.reason : "refused: " + ev.reason, "bad");
        return;
      }
      attempt += 1;
      const delay = Math.min(10000, 500 * 2 ** Math.min(attempt - 1, 5)) * (0.75 + Math.random() / 2);
      conn("reconnecting in " + (delay / 1000).toFixed(1) + " s (" + (ev.reason || "closed " + ev.code) + ")", "wait");
      setTimeout(connect, delay);
    };
  }

  term.onData((d) => { if (ws && ws.readyState === WebSocket.OPEN && role === "writer") ws.send(enc.encode(d)); });
  term.onBinary((d) => {
    if (!ws || role !== "writer") return;
    const b = new Uint8Array(d.length);
    for (let i = 0; i < d.length; i++) b[i] = d.charCodeAt(i) & 255;
    ws.send(b);
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (role === "writer") { fit.fit(); sendResize(); } }, 50);
  });

  // For tests and tools: the terminal and what the page knows.
  window.wsxTerm = {
    term,
    session: () => sessionId,
    role: () => role,
    state: () => lastState,
    connection: () => $("conn").textContent,
    screen: () => {
      const b = term.buffer.active, lines = [];
      for (let i = 0; i < term.rows; i++) {
        const line = b.getLine(b.viewportY + i);
        lines.push(line ? line.translateToString(true) : "");
      }
      return lines.join("\n");
    },
  };

  pickSession().then((id) => {
    sessionId = id;
    $("session").textContent = "session " + id;
    const keep = new URLSearchParams(location.search);
    keep.delete("ticket");
    keep.set("session", id);
    history.replaceState(null, "", "?" + keep.toString());
    connect();
  }, (e) => conn(String(e.message || e), "bad"));
})();
