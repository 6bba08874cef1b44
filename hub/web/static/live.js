/* The console's live page: reads the hub's event stream (GET /v1/events, Server-Sent Events, the session cookie
   authenticates it) and adds each event at the top of the table. Any event name is shown, so the stream is read with
   fetch rather than EventSource (which only delivers the names it was told). Values are set as text, never HTML. */
(function () {
  "use strict";
  var body = document.getElementById("live-events");
  var status = document.getElementById("live-status");
  if (!body || !window.fetch || !window.TextDecoder) return;
  var after = body.getAttribute("data-after") || "0";
  var say = function (key) { status.textContent = status.getAttribute("data-" + key); };

  function cell(row, text, cls) {
    var td = document.createElement("td");
    if (cls) { var span = document.createElement("span"); span.className = "state " + cls; span.textContent = text; td.appendChild(span); }
    else td.textContent = text || "";
    row.appendChild(td);
    return td;
  }

  function show(data) {
    var row = document.createElement("tr");
    cell(row, (data.at || "").replace("T", " ").slice(0, 19) + " UTC");
    cell(row, data.event);
    if (data.state) cell(row, data.state, data.state.replace(/[^a-z_]/g, "")); else cell(row, "");
    cell(row, data.counterpart || "");
    cell(row, data.actor || "");
    var link = cell(row, "");
    var target = data.message_id ? "/console/messages/" + encodeURIComponent(data.message_id) : data.document_id ? "/console/documents/" + encodeURIComponent(data.document_id) : null;
    if (target) { var a = document.createElement("a"); a.href = target; a.textContent = body.dataset.openLabel || "Open"; link.appendChild(a); }
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > 500) body.deleteRow(body.rows.length - 1);
  }

  function read(chunk, state) {
    state.buffer += chunk;
    var blocks = state.buffer.split("\n\n");
    state.buffer = blocks.pop();
    blocks.forEach(function (block) {
      var data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("data:") === 0) data.push(line.slice(5).trim());
        if (line.indexOf("id:") === 0) after = line.slice(3).trim();
      });
      if (data.length) { try { show(JSON.parse(data.join("\n"))); } catch (e) { /* a line that is no event */ } }
    });
  }

  function connect() {
    say("connecting");
    fetch("/v1/events?after=" + encodeURIComponent(after), { credentials: "same-origin", headers: { "Accept": "text/event-stream" } })
      .then(function (response) {
        if (!response.ok || !response.body) throw new Error(response.status);
        say("live");
        var reader = response.body.getReader(), decoder = new TextDecoder(), state = { buffer: "" };
        function pump() {
          return reader.read().then(function (part) {
            if (part.done) throw new Error("closed");
            read(decoder.decode(part.value, { stream: true }), state);
            return pump();
          });
        }
        return pump();
      })
      .catch(function () { say("lost"); setTimeout(connect, 3000); });
  }
  connect();
})();
