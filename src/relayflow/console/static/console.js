// relayflow console: progressive enhancement only. No inline scripts (strict CSP), and every
// value from the server is put into the page with textContent, never as HTML.
"use strict";

(function () {
  const csrf = document.body.dataset.csrf || "";

  function postJson(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // --- confirmations ---------------------------------------------------------------------
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    }
  });

  // --- JSON editor: highlighting and live validation -------------------------------------
  const TOKEN = /("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([{}\[\],])/g;

  function highlight(code, text, badLines) {
    code.textContent = "";
    const lines = text.split("\n");
    lines.forEach(function (line, index) {
      const row = el("span", badLines.has(index + 1) ? "line bad" : "line");
      let last = 0;
      line.replace(TOKEN, function (match, str, colon, word, num, punct, offset) {
        if (offset > last) row.appendChild(document.createTextNode(line.slice(last, offset)));
        let cls = "punct";
        if (str !== undefined) cls = colon ? "key" : "str";
        else if (word !== undefined) cls = "lit";
        else if (num !== undefined) cls = "num";
        row.appendChild(el("span", "tok-" + cls, match));
        last = offset + match.length;
        return match;
      });
      if (last < line.length) row.appendChild(document.createTextNode(line.slice(last)));
      row.appendChild(document.createTextNode("\n"));
      code.appendChild(row);
    });
  }

  function setupEditor(editor) {
    const textarea = editor.querySelector("textarea");
    const code = editor.querySelector(".editor-highlight code");
    const pre = editor.querySelector(".editor-highlight");
    const status = editor.querySelector(".editor-status");
    const list = editor.querySelector(".problems");
    const url = editor.dataset.validate;
    let badLines = new Set();
    let timer = null;
    let sequence = 0;

    function repaint() {
      highlight(code, textarea.value, badLines);
      pre.scrollTop = textarea.scrollTop;
      pre.scrollLeft = textarea.scrollLeft;
    }

    function goToLine(line) {
      const lines = textarea.value.split("\n");
      let offset = 0;
      for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
      textarea.focus();
      textarea.setSelectionRange(offset, offset);
      const height = parseFloat(getComputedStyle(textarea).lineHeight) || 19.5;
      textarea.scrollTop = Math.max(0, (line - 3) * height);
      repaint();
    }

    function validate() {
      const mine = ++sequence;
      if (!textarea.value.trim()) {
        status.textContent = "";
        list.textContent = "";
        badLines = new Set();
        repaint();
        return;
      }
      status.textContent = "Checking…";
      postJson(url, { text: textarea.value }).then(function (answer) {
        if (mine !== sequence) return;
        list.textContent = "";
        badLines = new Set();
        if (!answer.ok) {
          status.textContent = answer.data.message || "Could not validate.";
          return;
        }
        const problems = answer.data.errors || [];
        status.textContent = answer.data.valid ? "Valid." : problems.length + " problem(s)";
        status.className = "editor-status " + (answer.data.valid ? "ok" : "bad");
        problems.forEach(function (problem) {
          const item = el("li", "problem-item");
          item.appendChild(el("code", "path", problem.path || "(document)"));
          item.appendChild(document.createTextNode(" "));
          item.appendChild(el("span", "", problem.message));
          if (problem.line) {
            badLines.add(problem.line);
            const jump = el("button", "link", "line " + problem.line);
            jump.type = "button";
            jump.addEventListener("click", function () { goToLine(problem.line); });
            item.appendChild(jump);
          }
          item.dataset.path = problem.path || "";
          list.appendChild(item);
        });
        repaint();
      }).catch(function () {
        if (mine === sequence) status.textContent = "Could not reach the server to validate.";
      });
    }

    textarea.addEventListener("input", function () {
      repaint();
      clearTimeout(timer);
      timer = setTimeout(validate, 400);
    });
    textarea.addEventListener("scroll", function () {
      pre.scrollTop = textarea.scrollTop;
      pre.scrollLeft = textarea.scrollLeft;
    });
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.altKey) {
        // Two spaces, like the pretty-printed JSON; Escape then Tab leaves the editor.
        if (textarea.dataset.escaped === "1") { textarea.dataset.escaped = ""; return; }
        event.preventDefault();
        const start = textarea.selectionStart;
        textarea.setRangeText("  ", start, textarea.selectionEnd, "end");
        textarea.dispatchEvent(new Event("input"));
      } else if (event.key === "Escape") {
        textarea.dataset.escaped = "1";
      }
    });
    document.querySelectorAll("[data-template]").forEach(function (button) {
      button.addEventListener("click", function () {
        fetch(button.dataset.template, { credentials: "same-origin" })
          .then(function (r) { return r.text(); })
          .then(function (text) {
            textarea.value = text;
            textarea.dispatchEvent(new Event("input"));
            textarea.focus();
          });
      });
    });
    repaint();
    if (textarea.value.trim()) validate();
  }

  // --- graph: pan, zoom, node details -----------------------------------------------------
  function setupGraph(container) {
    const svg = container.querySelector("svg");
    if (!svg) return;
    const panel = container.closest(".graph-panel");
    const detail = panel ? panel.querySelector(".node-detail") : null;
    const stepsNode = panel ? panel.querySelector("#steps-json") : null;
    const steps = {};
    function collect(list) {
      (list || []).forEach(function (step) {
        if (step && typeof step === "object") {
          steps[step.id] = step;
          (step.do || []).forEach(function (branch) { collect(branch); });
        }
      });
    }
    try { collect(JSON.parse(stepsNode ? stepsNode.textContent : "[]")); } catch (e) { /* shown without details */ }
    const base = (svg.getAttribute("viewBox") || "0 0 100 100").split(/\s+/).map(Number);
    let view = base.slice();
    function apply() { svg.setAttribute("viewBox", view.join(" ")); }
    function zoom(factor) {
      const cx = view[0] + view[2] / 2, cy = view[1] + view[3] / 2;
      view[2] *= factor; view[3] *= factor;
      view[0] = cx - view[2] / 2; view[1] = cy - view[3] / 2;
      apply();
    }
    function pan(dx, dy) { view[0] += dx * view[2]; view[1] += dy * view[3]; apply(); }
    panel.querySelectorAll("[data-zoom]").forEach(function (button) {
      button.addEventListener("click", function () {
        const how = button.dataset.zoom;
        if (how === "in") zoom(0.8); else if (how === "out") zoom(1.25); else { view = base.slice(); apply(); }
      });
    });
    container.addEventListener("keydown", function (event) {
      const moves = { ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, -0.1], ArrowDown: [0, 0.1] };
      if (event.target !== container) return;
      if (moves[event.key]) { event.preventDefault(); pan(moves[event.key][0], moves[event.key][1]); }
      else if (event.key === "+" || event.key === "=") { zoom(0.8); }
      else if (event.key === "-") { zoom(1.25); }
    });
    let drag = null;
    svg.addEventListener("pointerdown", function (event) {
      if (event.target.closest && event.target.closest(".node")) return;
      drag = { x: event.clientX, y: event.clientY, view: view.slice() };
      svg.setPointerCapture(event.pointerId);
    });
    svg.addEventListener("pointermove", function (event) {
      if (!drag) return;
      const rect = svg.getBoundingClientRect();
      view[0] = drag.view[0] - (event.clientX - drag.x) * view[2] / rect.width;
      view[1] = drag.view[1] - (event.clientY - drag.y) * view[3] / rect.height;
      apply();
    });
    svg.addEventListener("pointerup", function () { drag = null; });
    svg.addEventListener("wheel", function (event) {
      if (!event.ctrlKey) return;
      event.preventDefault();
      zoom(event.deltaY > 0 ? 1.1 : 0.9);
    }, { passive: false });
    function show(node) {
      svg.querySelectorAll(".node.selected").forEach(function (n) { n.classList.remove("selected"); });
      node.classList.add("selected");
      if (!detail) return;
      const id = node.dataset.step;
      detail.textContent = "";
      detail.appendChild(el("h3", "", id));
      if (steps[id]) detail.appendChild(el("pre", "json", JSON.stringify(steps[id], null, 2)));
      const logs = document.querySelectorAll('.timeline [data-step="' + CSS.escape(id) + '"]');
      if (logs.length) {
        const list = el("ul", "step-logs");
        logs.forEach(function (log) {
          const item = el("li");
          const link = el("a", "", (log.querySelector("summary") || log).textContent.trim().replace(/\s+/g, " "));
          link.href = "#" + log.id;
          link.addEventListener("click", function () { const d = log.querySelector("details"); if (d) d.open = true; });
          item.appendChild(link);
          list.appendChild(item);
        });
        detail.appendChild(list);
      }
    }
    svg.querySelectorAll(".node").forEach(function (node) {
      node.addEventListener("click", function () { show(node); });
      node.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); show(node); }
      });
    });
  }

  // --- live instance page ------------------------------------------------------------------
  function setupLive(root) {
    if (!window.EventSource || !root.dataset.live) return;
    let source = null;
    function indicate(on) {
      const indicator = document.getElementById("live-indicator");
      if (indicator) indicator.hidden = !on;
    }
    function refresh(then) {
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
          if (!fresh) return;
          const open = new Set(Array.from(root.querySelectorAll("details[open]")).map(function (d) {
            const li = d.closest("li"); return li ? li.id : "";
          }));
          // What the user picked in a form (e.g. the retry's version) survives the refresh.
          const picked = new Map(Array.from(root.querySelectorAll("select[id]")).map(function (c) {
            return [c.id, c.value];
          }));
          root.replaceChildren.apply(root, Array.from(fresh.childNodes));
          picked.forEach(function (value, id) {
            const control = document.getElementById(id);
            if (control && Array.from(control.options).some(function (o) { return o.value === value; })) {
              control.value = value;
            }
          });
          root.dataset.progress = fresh.dataset.progress || "";
          root.querySelectorAll("details").forEach(function (d) {
            const li = d.closest("li");
            if (li && open.has(li.id)) d.open = true;
          });
          root.querySelectorAll(".graph").forEach(setupGraph);
          indicate(source !== null);
          if (then) then();
        });
    }
    function connect() {
      source = new EventSource(root.dataset.live + "?seen=" + encodeURIComponent(root.dataset.progress || ""));
      indicate(true);
      source.addEventListener("change", function () { refresh(); });
      // Every change was announced (and refreshed) before `end`: nothing to fetch again.
      source.addEventListener("end", function () { source.close(); source = null; indicate(false); });
      source.addEventListener("gone", function () { source.close(); source = null; indicate(false); });
      source.addEventListener("again", function () { source.close(); connect(); });
    }
    connect();
  }

  // --- simulator ---------------------------------------------------------------------------
  function setupSimulator(form) {
    const kind = form.querySelector("#sim-kind");
    const bubbles = form.querySelector("#bubbles");
    const keypad = form.querySelector("#keypad");
    const result = form.querySelector("#sim-result");
    const setup = document.getElementById("virtual-setup");
    const clock = document.getElementById("virtual-clock");
    const now = document.getElementById("virtual-now");
    const instancesList = document.getElementById("virtual-instances");
    const help = document.getElementById("mode-help");
    const seen = new Set();
    let latestCapture = null;
    let primed = false;
    let mode = "live";
    let virtualOpen = false;

    function showFor() {
      form.querySelectorAll("[data-for]").forEach(function (node) {
        node.hidden = node.dataset.for.split(" ").indexOf(kind.value) < 0;
      });
    }
    kind.addEventListener("change", showFor);
    showFor();

    function bubble(side, text, meta, link) {
      const item = el("li", "bubble " + side);
      item.appendChild(el("p", "", text));
      const footer = el("p", "meta", meta);
      if (link) {
        const a = el("a", "", "instance");
        a.href = link;
        footer.appendChild(document.createTextNode(" · "));
        footer.appendChild(a);
      }
      item.appendChild(footer);
      bubbles.appendChild(item);
      item.scrollIntoView({ block: "nearest" });
    }

    function label(m) {
      return m.channel === "voice" ? "📞 " + (m.text || "(call)") : m.text;
    }

    function poll() {
      if (mode !== "live") return;
      fetch("/console/sandbox/outbox", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (messages) {
          messages.forEach(function (m) {
            if (seen.has(m.id)) return;
            seen.add(m.id);
            if (m.capture) latestCapture = m;
            if (!primed) return; // only what arrives while the page is open
            const link = m.workflowId ? "/console/workflows/" + encodeURIComponent(m.workflowId) + "?step=" + encodeURIComponent(m.stepLogId || "") : null;
            bubble("them", label(m), m.channel + " to " + (m.to || "?") + " · " + m.at, link);
          });
          primed = true;
          if (mode === "live") keypad.hidden = !latestCapture;
        })
        .catch(function () { /* next poll */ });
    }
    setInterval(poll, 1000);
    poll();

    function showVirtual(data) {
      now.textContent = data.clock;
      (data.new || []).forEach(function (m) {
        if (m.capture) latestCapture = m;
        bubble("them", label(m), m.channel + " to " + (m.to || "?") + " · " + data.clock);
      });
      instancesList.textContent = "";
      (data.instances || []).forEach(function (i) {
        const item = el("li", "", i.workflowId + ": " + i.status);
        (i.errors || []).forEach(function (e) { item.appendChild(el("div", "problem", e.step + ": " + e.message)); });
        instancesList.appendChild(item);
      });
      keypad.hidden = !latestCapture;
    }

    function send(body, echo) {
      if (mode === "virtual" && !virtualOpen) { result.textContent = "Start a virtual session first."; return; }
      const url = mode === "virtual" ? "/console/sandbox/virtual/send" : "/console/sandbox/send";
      result.textContent = "Sending…";
      postJson(url, body).then(function (answer) {
        if (!answer.ok) {
          result.textContent = answer.data.message || "Refused.";
          return;
        }
        if (echo) bubble("me", echo, body.kind === "dtmf" ? "keypad" : body.kind);
        if (mode === "virtual") {
          showVirtual(answer.data);
          result.textContent = body.kind === "advance" ? "Advanced to " + answer.data.clock + "." : "Done.";
          return;
        }
        const started = (answer.data.started || []).length, resumed = (answer.data.resumed || []).length;
        result.textContent = "Started " + started + ", resumed " + resumed + ".";
        poll();
      }).catch(function () { result.textContent = "Could not reach the server."; });
    }

    document.querySelectorAll('input[name="mode"]').forEach(function (radio) {
      radio.addEventListener("change", function () {
        mode = radio.value;
        setup.hidden = mode !== "virtual";
        help.textContent = mode === "virtual"
          ? "Virtual time: a private copy of the flow; nothing reaches your account's instances or outbox."
          : "Play the customer. Your flows' replies arrive from the sandbox outbox.";
        bubbles.textContent = "";
        latestCapture = null;
        keypad.hidden = true;
      });
    });
    document.getElementById("virtual-start").addEventListener("click", function () {
      const mocksText = document.getElementById("virtual-mocks").value.trim();
      let mocks = null;
      if (mocksText) {
        try { mocks = JSON.parse(mocksText); } catch (e) { result.textContent = "The mocks are not valid JSON."; return; }
      }
      const definitionId = document.getElementById("virtual-definition").value;
      postJson("/console/sandbox/virtual/start", { definitionId: definitionId, mocks: mocks }).then(function (answer) {
        if (!answer.ok) { result.textContent = answer.data.message || "Refused."; return; }
        virtualOpen = true;
        bubbles.textContent = "";
        latestCapture = null;
        clock.hidden = false;
        showVirtual(answer.data);
        result.textContent = "Virtual session started.";
      });
    });
    document.querySelectorAll("[data-advance]").forEach(function (button) {
      button.addEventListener("click", function () { send({ kind: "advance", by: button.dataset.advance }, null); });
    });
    document.getElementById("virtual-advance").addEventListener("click", function () {
      send({ kind: "advance", by: document.getElementById("virtual-span").value.trim() }, null);
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const value = function (name) { const f = form.elements[name]; return f ? f.value : ""; };
      const sub = value("subAccountId").trim() || null;
      if (kind.value === "sms") {
        send({ kind: "sms", from: value("from"), to: value("to"), text: value("text"), subAccountId: sub }, value("text"));
      } else if (kind.value === "chat") {
        const payload = value("payload").trim() || null;
        const text = value("text") || null;
        send({ kind: "chat", channel: value("channel"), from: value("from"), text: text, payload: payload, subAccountId: sub }, text || ("[" + payload + "]"));
      } else {
        let parsed;
        try { parsed = JSON.parse(value("body") || "{}"); } catch (e) { result.textContent = "The trigger body is not valid JSON."; return; }
        send({ kind: "http", body: parsed, subAccountId: sub }, JSON.stringify(parsed));
      }
      const text = form.elements["text"];
      if (text) text.value = "";
    });
    keypad.querySelectorAll("[data-key]").forEach(function (button) {
      button.addEventListener("click", function () {
        if (!latestCapture) return;
        const body = { kind: "dtmf", digits: button.dataset.key };
        if (mode === "live") body.clientRequestId = latestCapture.clientRequestId;
        send(body, button.dataset.key);
      });
    });
  }

  document.querySelectorAll(".editor").forEach(setupEditor);
  document.querySelectorAll(".graph").forEach(setupGraph);
  const live = document.getElementById("live");
  if (live) setupLive(live);
  const sim = document.getElementById("sim-form");
  if (sim) setupSimulator(sim);
})();
