// The Live pages: the list of calls going on (fetched again every few seconds) and one call,
// whose lines, alerts and state arrive as Server-Sent Events. Text is set as text, never HTML.
const said = JSON.parse(document.getElementById("live-messages").textContent);
const clock = (s) => {
  const t = Math.max(0, Math.floor(s));
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = String(t % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
};
const labelOf = (score) => (score >= 0.05 ? "positive" : score <= -0.05 ? "negative" : "neutral");
const make = (tag, props = {}, ...children) => {
  const el = Object.assign(document.createElement(tag), props);
  el.append(...children);
  return el;
};
const sentimentText = (score) => {
  if (score === null || score === undefined) return "–";
  const label = labelOf(score);
  return `${said.faces[label]} ${said[label]}`;
};

// --- the list ----------------------------------------------------------------------------------
const list = document.getElementById("live-calls");
if (list) {
  const body = list.tBodies[0];
  const refresh = async () => {
    try {
      const answer = await fetch(list.dataset.source, { headers: { Accept: "application/json" } });
      if (!answer.ok) return;
      const { items } = await answer.json();
      const rows = items.map((c) => {
        const state = make("td", {}, said[c.status] || c.status);
        if (c.conversation_url) state.append(" · ", make("a", { href: c.conversation_url }, said.conversation));
        const row = make("tr", {},
          make("td", {}, make("a", { href: c.url }, c.external_id)),
          make("td", {}, c.agent || "–"), make("td", {}, c.customer || "–"), make("td", {}, c.queue || "–"),
          make("td", {}, clock(c.duration_s)), make("td", {}, sentimentText(c.customer_sentiment)),
          make("td", {}, String(c.alerts)), state);
        row.dataset.id = c.id;
        return row;
      });
      if (!rows.length) rows.push(make("tr", { className: "empty" }, make("td", { colSpan: 8 }, said.none)));
      body.replaceChildren(...rows);
    } catch (_e) { /* the next round tries again */ }
  };
  setInterval(refresh, 2000);
}

// --- one call ----------------------------------------------------------------------------------
const facts = document.getElementById("live-call");
if (facts) {
  const transcript = document.getElementById("live-transcript");
  const alerts = document.getElementById("live-alerts");
  const timeline = document.getElementById("live-timeline");
  const lanes = { agent: timeline.querySelector(".agent"), customer: timeline.querySelector(".customer") };
  const state = document.getElementById("live-state");
  const duration = document.getElementById("live-duration");
  const sentiment = document.getElementById("live-sentiment");
  const spans = new Map(); // line id → [block, start, end]
  let length = 1;
  let call = null;

  const layout = () => {
    for (const [block, start, end] of spans.values()) {
      block.style.left = `${(100 * start) / length}%`;
      block.style.width = `${Math.max(0.4, (100 * (end - start)) / length)}%`;
    }
  };
  const onTimeline = (line) => {
    const lane = lanes[line.speaker] || lanes.customer;
    let entry = spans.get(line.id);
    if (!entry) {
      const block = make("span", { className: line.alert ? "mark category" : "block" }, line.alert ? "◆" : "");
      lane.append(block);
      entry = [block];
    }
    spans.set(line.id, [entry[0], line.start_s, line.end_s]);
    length = Math.max(length, line.end_s);
  };
  const showLine = (line) => {
    let item = transcript.querySelector(`[data-line="${line.id}"]`);
    if (!line.text && line.final) {
      if (item) item.remove();
      return;
    }
    const face = line.sentiment === null ? "" : said.faces[labelOf(line.sentiment)];
    const text = make("p", { className: "text" }, line.text);
    if (!line.final) text.append(make("span", { className: "muted" }, ` (${said.hearing})`));
    const fresh = make("li", { className: `line ${line.speaker}${line.final ? "" : " partial"}` },
      make("span", { className: "who" }, said[line.speaker] || line.speaker),
      make("time", {}, clock(line.start_s)),
      make("span", { className: "sentiment", title: line.sentiment === null ? "" : said[labelOf(line.sentiment)] }, face),
      text);
    fresh.dataset.line = line.id;
    fresh.dataset.start = line.start_s;
    if (item) {
      item.replaceWith(fresh);
      return;
    }
    const later = [...transcript.children].find((li) => Number(li.dataset.start) > line.start_s);
    transcript.insertBefore(fresh, later || null);
  };
  const showAlert = (line) => {
    if (alerts.querySelector(`[data-line="${line.id}"]`)) return;
    alerts.querySelector(".empty")?.remove();
    const item = make("li", { className: "alert" },
      make("strong", {}, said.alert.replace("%(name)s", line.alert)), " ",
      make("time", {}, clock(line.start_s)), " ", make("q", {}, line.text));
    item.dataset.line = line.id;
    alerts.append(item);
  };
  const showCall = (c) => {
    call = c;
    call.seenAt = Date.now();
    state.textContent = said[c.status] || c.status;
    sentiment.textContent = sentimentText(c.customer_sentiment);
    duration.textContent = clock(c.duration_s);
    length = Math.max(length, c.duration_s);
    if (c.status === "ended") {
      const end = c.conversation_url
        ? make("a", { href: c.conversation_url }, said.conversation)
        : make("span", {}, said.failed.replace("%(why)s", c.error || ""));
      state.replaceChildren(said.ended, " · ", end);
    }
    layout();
  };
  setInterval(() => {
    if (call && call.status !== "ended") {
      duration.textContent = clock(call.duration_s + (Date.now() - call.seenAt) / 1000);
    }
  }, 1000);

  const events = new EventSource(facts.dataset.events);
  events.addEventListener("line", (e) => {
    const line = JSON.parse(e.data);
    onTimeline(line);
    if (line.alert) showAlert(line);
    else showLine(line);
  });
  events.addEventListener("call", (e) => {
    showCall(JSON.parse(e.data));
    if (call.status === "ended") events.close();
  });
  events.addEventListener("error", () => {
    if (!call || call.status !== "ended") state.textContent = said.lost;
  });
}
