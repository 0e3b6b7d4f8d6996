// The conversation page: tabs, the player with its timeline, the transcript that follows the
// audio, transcript search, metric evidence on the timeline, and the live processing state.

const $ = (sel) => document.querySelector(sel);
const data = JSON.parse($("#timeline-data").textContent);
const messages = JSON.parse($("#messages").textContent);
const t = (key, values = {}) =>
  (messages[key] || key).replace(/%\((\w+)\)[ds]/g, (_m, name) => String(values[name]));
const UNSURE = 0.5; // words recognised with less confidence are marked for checking
const FACES = { positive: "🙂", negative: "🙁", neutral: "😐" };

// --- tabs --------------------------------------------------------------------------------

const tabs = [...document.querySelectorAll('[role="tab"]')];
const TABS = tabs.map((tab) => tab.getAttribute("aria-controls"));

function showTab(id) {
  for (const tab of tabs) {
    const selected = tab.getAttribute("aria-controls") === id;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
  }
  if (id === "details") draw();
  const mini = $("#mini-player");
  if (mini) mini.hidden = !PLAYS_IN_PLACE.includes(id);
}

// on these tabs a moment plays where it is, with a small player kept at the bottom, so that
// the reader (an evaluator at the form) keeps their place
const PLAYS_IN_PLACE = ["summary", "evaluation"];

function currentTab() {
  const tab = tabs.find((x) => x.getAttribute("aria-selected") === "true");
  return tab ? tab.getAttribute("aria-controls") : null;
}

function chooseTab(tab) {
  const id = tab.getAttribute("aria-controls");
  history.replaceState(null, "", "#" + id);
  showTab(id);
}

// the ARIA tab pattern: one tab stop for the tab list, arrows, Home and End move between tabs
for (const [i, tab] of tabs.entries()) {
  tab.addEventListener("click", () => chooseTab(tab));
  tab.addEventListener("keydown", (e) => {
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = tabs[(to + tabs.length) % tabs.length];
    chooseTab(next);
    next.focus();
  });
}

// --- live processing state -----------------------------------------------------------------

const state = $("#state");
if (state && state.dataset.job && ["queued", "processing"].includes(data.status)) {
  const poll = async () => {
    const res = await fetch(`/api/v1/jobs/${state.dataset.job}`);
    if (!res.ok) return;
    const job = await res.json();
    state.className = `state ${job.status}`;
    state.textContent = job.status === "processing" ? `${t("processing")} ${Math.floor(job.progress)} %`
      : job.status === "failed" ? `${t("failed")}: ${job.error}` : t(job.status);
    if (job.status === "processed") refresh();
    else if (job.status !== "failed") setTimeout(poll, 1500);
  };
  setTimeout(poll, 1500);
}

// --- player --------------------------------------------------------------------------------

const audio = $("#audio");
const canvas = $("#timeline");
let segments = $("#transcript-data") ? JSON.parse($("#transcript-data").textContent) : [];
let lines = [];
let words = [];
let spoken = [];
let peaks = null;
let hits = [];
let hitIndex = -1;
let evidence = [];

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
}

function duration() {
  return audio && isFinite(audio.duration) && audio.duration > 0 ? audio.duration : data.duration;
}

function seek(seconds) {
  if (!audio) return; // a transcript imported without its audio
  audio.currentTime = Math.min(Math.max(0, seconds), duration());
  setFollowing(true);
  follow(true, true);
}

// While the audio plays the transcript follows it, until the reader scrolls away (wheel, touch,
// keys, the scroll bar); "Back to the current line" (or a seek) makes it follow again.
let following = true;
let ownScrollUntil = 0;

function scrollToElement(element) {
  ownScrollUntil = performance.now() + 400;
  element.scrollIntoView({ block: "center" });
}

function setFollowing(on) {
  following = on;
  const back = $("#follow");
  if (back) back.hidden = on;
}

function readerMoved() {
  if (audio && !audio.paused) setFollowing(false);
}

function pageScrolled() {
  if (performance.now() > ownScrollUntil) readerMoved(); // (not a scroll of our own)
}

const COLOURS = { positive: "#2e9d5b", negative: "#d0453a", neutral: "#9aa3ad" };

// the canvas, top to bottom: search hits; the waveform, agent above the middle and customer
// below; the agent's lane and the customer's, coloured by sentiment; the time axis. Heights are
// of a 140 px canvas, scaled to the height it is shown at (less on a phone).
const FULL = 140, WAVE_MID = 54, WAVE = 38, AGENT_LANE = 98, CUSTOMER_LANE = 110, LANE = 9, AXIS = 124;

let stripes = null;

function hatch(ctx) {
  // grey diagonal stripes: a line whose sentiment is uncertain (made once)
  if (stripes) return stripes;
  const tile = document.createElement("canvas");
  tile.width = tile.height = 6;
  const t2 = tile.getContext("2d");
  t2.fillStyle = "#eef0f3";
  t2.fillRect(0, 0, 6, 6);
  t2.strokeStyle = "#9aa3ad";
  t2.beginPath(); t2.moveTo(0, 6); t2.lineTo(6, 0); t2.stroke();
  stripes = ctx.createPattern(tile, "repeat");
  return stripes;
}

function tickStep(total, width) {
  // the shortest of these steps that leaves at least 70 px between labels
  const steps = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  return steps.find((step) => (step / total) * width >= 70) || 7200;
}

function draw() {
  if (!canvas || canvas.offsetParent === null) return;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight || FULL;
  canvas.width = width;
  canvas.height = height;
  const y = (v) => (v * height) / FULL;
  const small = height < FULL * 0.75; // a phone: no lane names, no faces on the lanes
  const ctx = canvas.getContext("2d");
  const total = duration();
  const x = (t) => (t / total) * width;
  const laneOf = (speaker) => y(speaker === "customer" ? CUSTOMER_LANE : AGENT_LANE);
  ctx.clearRect(0, 0, width, height);
  if (peaks) {
    const channels = peaks.channels;
    ctx.fillStyle = "#c7d3e3";
    channels.forEach((values, c) => {
      const step = values.length / width;
      for (let px = 0; px < width; px++) {
        const v = values[Math.floor(px * step)] || 0;
        const h = y(v * WAVE);
        if (channels.length === 1) ctx.fillRect(px, y(WAVE_MID) - h, 1, 2 * h);
        else if (c === 0) ctx.fillRect(px, y(WAVE_MID) - h, 1, h);
        else ctx.fillRect(px, y(WAVE_MID), 1, h);
      }
    });
  }
  ctx.textBaseline = "middle";
  ctx.fillStyle = "#5a6472";
  if (!small) {
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText(`▲ ${t("agent")}`, 4, y(24));
    ctx.fillText(`▼ ${t("customer")}`, 4, y(84));
  }
  // speaker lanes, coloured by sentiment, with its face where the segment is wide enough
  ctx.font = "10px sans-serif";
  for (const seg of segments) {
    const w = Math.max(2, x(seg.end_s) - x(seg.start_s));
    const label = seg.sentiment.label;
    ctx.fillStyle = seg.sentiment.uncertain ? hatch(ctx) : COLOURS[label] || COLOURS.neutral;
    ctx.fillRect(x(seg.start_s), laneOf(seg.speaker), w, y(LANE));
    if (!small && w >= 16 && FACES[label]) ctx.fillText(FACES[label], x(seg.start_s) + w / 2 - 5, laneOf(seg.speaker) + 5);
  }
  // redacted personal data: a dark block over the speaker's lane
  ctx.fillStyle = "#1d1d1f";
  for (const seg of segments) {
    for (const w of seg.words) {
      if (w.text.startsWith("[PII:")) ctx.fillRect(x(w.start_s), laneOf(seg.speaker) - 2, Math.max(3, x(w.end_s) - x(w.start_s)), y(LANE) + 4);
    }
  }
  // the time axis
  ctx.fillStyle = "#5a6472";
  ctx.font = "10px system-ui, sans-serif";
  const step = tickStep(total || 1, width);
  for (let at = 0; at <= total; at += step) {
    ctx.fillRect(x(at), y(AXIS), 1, 3);
    const label = clock(at);
    const textX = Math.min(Math.max(0, x(at) - ctx.measureText(label).width / 2), width - ctx.measureText(label).width);
    ctx.fillText(label, textX, Math.min(height - 5, y(AXIS) + 10));
  }
  // metric evidence, search hits, transfers (with the new agent's name), playhead
  ctx.fillStyle = "rgba(255, 170, 0, 0.35)";
  for (const span of evidence) ctx.fillRect(x(span.start), 0, Math.max(2, x(span.end) - x(span.start)), y(AXIS));
  ctx.fillStyle = "#b7791f";
  for (const hit of hits) ctx.fillRect(x(hit.time) - 1, 0, 3, y(12));
  // category matches (purple diamonds) and comments (blue dots) along the top
  for (const mark of data.marks || []) {
    const at = x(mark.at);
    ctx.fillStyle = mark.kind === "comment" ? "#1f5fa8" : "#7b3fb0";
    ctx.beginPath();
    if (mark.kind === "comment") ctx.arc(at, y(18), 4, 0, 2 * Math.PI);
    else { ctx.moveTo(at, y(13)); ctx.lineTo(at + 4, y(18)); ctx.lineTo(at, y(23)); ctx.lineTo(at - 4, y(18)); }
    ctx.fill();
  }
  ctx.strokeStyle = "#5a6472";
  ctx.setLineDash([3, 3]);
  for (const s of data.sessions.slice(1)) {
    ctx.beginPath(); ctx.moveTo(x(s.start), 0); ctx.lineTo(x(s.start), y(AXIS)); ctx.stroke();
    ctx.fillStyle = "#1d2430";
    const label = `⇄ ${s.agent}`;
    const right = x(s.start) + 4 + ctx.measureText(label).width > width;
    ctx.fillText(label, right ? x(s.start) - 4 - ctx.measureText(label).width : x(s.start) + 4, 8);
  }
  ctx.setLineDash([]);
  if (audio) {
    ctx.fillStyle = "#1f5fa8";
    ctx.fillRect(x(audio.currentTime) - 1, 0, 2, y(AXIS));
  }
}

// What the timeline shows, in words, for those who cannot see the canvas: the lanes, the
// sentiment of each quarter of the call, transfers and search matches.
function describeTimeline() {
  const summary = $("#timeline-summary");
  if (!summary) return;
  const total = duration() || 1;
  const quarters = [0, 1, 2, 3].map((q) => {
    const score = { positive: 0, neutral: 0, negative: 0 };
    for (const seg of segments) {
      const overlap = Math.min(seg.end_s, ((q + 1) * total) / 4) - Math.max(seg.start_s, (q * total) / 4);
      if (overlap > 0 && seg.sentiment.label) score[seg.sentiment.label] += overlap;
    }
    const best = Object.keys(score).reduce((a, b) => (score[b] > score[a] ? b : a));
    return score[best] > 0 ? t(best) : "–";
  });
  const parts = [
    t("Upper half and lane: the agent; lower: the customer."),
    t("Sentiment by quarter of the call: %(list)s.", { list: quarters.join(", ") }),
  ];
  for (const s of data.sessions.slice(1)) {
    parts.push(t("Transferred to %(agent)s at %(time)s.", { agent: s.agent, time: clock(s.start) }));
  }
  for (const mark of data.marks || []) {
    parts.push(mark.kind === "comment"
      ? t("Comment by %(author)s at %(time)s.", { author: mark.label, time: clock(mark.at) })
      : t("Category %(name)s at %(time)s.", { name: mark.label, time: clock(mark.at) }));
  }
  summary.textContent = parts.join(" ");
}

// --- transcript --------------------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderTranscript() {
  const list = $("#transcript");
  if (!list || !segments.length) return;
  const fragment = document.createDocumentFragment();
  lines = [];
  words = [];
  for (const seg of segments) {
    const line = element("li", `line ${seg.speaker}`);
    line.dataset.start = String(seg.start_s);
    line.dataset.end = String(seg.end_s);
    line.tabIndex = lines.length ? -1 : 0; // one tab stop; arrows move between lines
    const who = t(seg.speaker);
    line.append(
      element("span", "who", who.charAt(0).toUpperCase() + who.slice(1) + (seg.agent ? ` · ${seg.agent}` : "")),
      element("time", "", clock(seg.start_s)),
    );
    const label = seg.sentiment.label;
    const face = element("span", `sentiment ${label || ""}`, FACES[label] || "");
    // what decided it: the cue phrase or the sentiment words of each clause (the rules), or the
    // labelled line it reads like (the learned classifier)
    const because = seg.sentiment.because || [];
    const reasons = because.map((b) => (typeof b === "string" ? b : b.like ? t("reads like “%(text)s”", { text: b.like }) : ""));
    if (label) face.title = reasons.filter(Boolean).length ? `${t(label)}: ${reasons.filter(Boolean).join("; ")}` : t(label);
    if (seg.sentiment.uncertain) {
      // words recognised with too little confidence, or a line too unclear: no sentiment given
      line.classList.add("uncertain");
      face.title = because.some((b) => b && b.unsure !== undefined)
        ? t("uncertain: the line's sentiment is not clear enough to give")
        : t("uncertain: the words may be wrong, so their sentiment is not given");
    }
    const text = element("p", "text");
    line.lineWords = seg.words.map((w, i) => {
      const unsure = w.confidence !== null && w.confidence !== undefined && w.confidence < UNSURE;
      const span = element("span", unsure ? "w unsure" : "w", w.text);
      if (unsure) span.title = `${t("confidence")} ${Math.round(w.confidence * 100)} %`;
      span.dataset.start = String(w.start_s);
      span.dataset.end = String(w.end_s);
      text.append(i ? " " : "", span);
      words.push(span);
      return span;
    });
    line.append(face, text);
    line.addEventListener("click", () => seek(seg.start_s));
    line.addEventListener("keydown", (e) => lineKey(e, line, seg));
    lines.push(line);
    fragment.append(line);
  }
  list.replaceChildren(fragment);
}

function lineKey(e, line, seg) {
  const at = lines.indexOf(line);
  const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: lines.length - 1 }[e.key];
  if (e.key === "Enter") seek(seg.start_s);
  if (to === undefined || to < 0 || to >= lines.length) return;
  e.preventDefault();
  line.tabIndex = -1;
  lines[to].tabIndex = 0;
  lines[to].focus();
}

function lineAt(time) {
  // the last line starting at or before TIME (lines are in time order)
  let low = 0, high = segments.length - 1, found = -1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    if (segments[mid].start_s <= time) { found = mid; low = mid + 1; } else high = mid - 1;
  }
  return found;
}

let currentLine = null;

function follow(scroll, always = false) {
  const time = audio.currentTime;
  $("#time").textContent = `${clock(time)} / ${clock(duration())}`;
  canvas.setAttribute("aria-valuenow", String(Math.floor(time)));
  canvas.setAttribute("aria-valuetext", `${clock(time)} / ${clock(duration())}`);
  const index = lineAt(time + 0.05);
  const current = index >= 0 ? lines[index] : null;
  const moved = current !== currentLine;
  if (moved) {
    if (currentLine) { currentLine.classList.remove("current"); currentLine.removeAttribute("aria-current"); }
    if (current) { current.classList.add("current"); current.setAttribute("aria-current", "true"); }
    currentLine = current;
  }
  for (const w of spoken) w.classList.remove("spoken");
  spoken = current ? current.lineWords.filter((w) => Number(w.dataset.start) <= time && time < Number(w.dataset.end)) : [];
  for (const w of spoken) w.classList.add("spoken");
  if (current && scroll && following && (moved || always)) scrollToElement(current);
  draw();
}

if (audio) {
  const play = $("#play");
  const toggle = () => (audio.paused ? audio.play() : audio.pause());
  play.addEventListener("click", toggle);
  audio.addEventListener("play", () => { play.textContent = "❚❚"; play.setAttribute("aria-label", t("Pause")); });
  audio.addEventListener("play", () => {
    // the first play of this page view goes into the audit log
    fetch(`/conversations/${$("#player").dataset.id}/played`, {
      method: "POST",
      headers: { "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content },
    });
  }, { once: true });
  audio.addEventListener("pause", () => { play.textContent = "▶"; play.setAttribute("aria-label", t("Play")); });
  audio.addEventListener("timeupdate", () => follow(!audio.paused));
  const miniPlay = $("#mini-play");
  if (miniPlay) {
    miniPlay.addEventListener("click", toggle);
    const shown = () => {
      const playing = !audio.paused;
      miniPlay.textContent = playing ? "❚❚" : "▶";
      miniPlay.setAttribute("aria-label", t(playing ? "Pause" : "Play"));
    };
    audio.addEventListener("play", shown);
    audio.addEventListener("pause", shown);
    audio.addEventListener("timeupdate", () => {
      $("#mini-time").textContent = clock(audio.currentTime) + " / " + clock(duration());
      const index = lineAt(audio.currentTime + 0.05);
      const line = index >= 0 ? segments[index] : null;
      $("#mini-line").textContent = line ? t(line.speaker) + ": " + line.text : "";
    });
  }
  window.addEventListener("scroll", pageScrolled, { passive: true });
  for (const kind of ["wheel", "touchmove"]) window.addEventListener(kind, readerMoved, { passive: true });
  $("#follow").addEventListener("click", () => {
    setFollowing(true);
    if (currentLine) scrollToElement(currentLine);
  });
  audio.addEventListener("loadedmetadata", draw);
  $("#back").addEventListener("click", () => seek(audio.currentTime - 10));
  $("#fwd").addEventListener("click", () => seek(audio.currentTime + 30));
  $("#volume").addEventListener("input", (e) => { audio.volume = Number(e.target.value); });
  $("#speed").addEventListener("change", (e) => { audio.playbackRate = Number(e.target.value); });
  canvas.addEventListener("keydown", (e) => {
    if (e.key === "Home" || e.key === "End") {
      e.preventDefault();
      seek(e.key === "Home" ? 0 : duration());
    }
  });
  canvas.addEventListener("click", (e) => {
    const rect = canvas.getBoundingClientRect();
    seek(((e.clientX - rect.left) / rect.width) * duration());
  });
  document.addEventListener("keydown", (e) => {
    if ($("#details").hidden) return;
    const typing = ["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(e.target.tagName);
    if (e.key === " " && !typing) { e.preventDefault(); toggle(); }
    else if (e.key === "ArrowLeft" && !typing) { e.preventDefault(); seek(audio.currentTime - 10); }
    else if (e.key === "ArrowRight" && !typing) { e.preventDefault(); seek(audio.currentTime + 30); }
  });
  fetch(`/api/v1/conversations/${$("#player").dataset.id}/peaks`)
    .then((res) => (res.ok ? res.json() : null))
    .then((json) => { peaks = json; draw(); });
  window.addEventListener("resize", draw);
}

// --- search ----------------------------------------------------------------------------------

// One meaning for both searches (the list's is in review/search.py): words and "quoted phrases",
// whole words compared without case or diacritics, a trailing * for a prefix.

const fold = (text) => text.toLowerCase().normalize("NFKD").replace(/\p{M}/gu, "");
const tokens = (text) => fold(text).match(/[\p{L}\p{N}]+/gu) || [];

function queryTerms(query) {
  const found = [];
  for (const [, phrase, word] of query.matchAll(/"([^"]*)"|(\S+)/g)) {
    const raw = phrase === undefined ? word : phrase;
    const parts = tokens(raw);
    if (parts.length) found.push({ parts, prefix: raw.trim().endsWith("*") });
  }
  return found;
}

function search(query) {
  for (const mark of document.querySelectorAll("#transcript mark")) mark.replaceWith(...mark.childNodes);
  for (const w of words) w.normalize();
  hits = [];
  hitIndex = -1;
  const said = words.flatMap((w) => tokens(w.textContent).map((token) => ({ w, token })));
  const same = (at, part, last, prefix) =>
    at < said.length && (last && prefix ? said[at].token.startsWith(part) : said[at].token === part);
  for (const { parts, prefix } of queryTerms(query)) {
    for (let i = 0; i + parts.length <= said.length; i++) {
      if (!parts.every((part, k) => same(i + k, part, k === parts.length - 1, prefix))) continue;
      const found = [...new Set(said.slice(i, i + parts.length).map((s) => s.w))];
      hits.push({ time: Number(found[0].dataset.start), marks: found.map((w) => {
        const mark = document.createElement("mark");
        mark.append(...w.childNodes);
        w.append(mark);
        return mark;
      }) });
    }
  }
  hits.sort((a, b) => a.time - b.time);
  showHit(hits.length ? 0 : -1);
}

function showHit(index) {
  for (const hit of hits) for (const mark of hit.marks) mark.classList.remove("active");
  hitIndex = index;
  const label = $("#hits");
  if (!$("#search").value.trim()) label.textContent = "";
  else if (!hits.length) label.textContent = t("%(n)d of %(m)d", { n: 0, m: 0 });
  else {
    const hit = hits[index];
    for (const mark of hit.marks) mark.classList.add("active");
    setFollowing(false); // the reader looks at the hits; "Back to the current line" returns
    scrollToElement(hit.marks[0]);
    label.textContent = t("%(n)d of %(m)d", { n: index + 1, m: hits.length });
  }
  draw();
}

if ($("#search")) {
  $("#search").addEventListener("input", (e) => search(e.target.value));
  $("#search").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && hits.length) showHit((hitIndex + (e.shiftKey ? hits.length - 1 : 1)) % hits.length);
  });
  $("#next-hit").addEventListener("click", () => hits.length && showHit((hitIndex + 1) % hits.length));
  $("#prev-hit").addEventListener("click", () => hits.length && showHit((hitIndex + hits.length - 1) % hits.length));
}

// --- metric evidence -------------------------------------------------------------------------

function showEvidence(label) {
  // the caption says what the highlighted spans are, and clears them
  const caption = $("#evidence-caption");
  if (!caption) return;
  caption.hidden = !label;
  caption.querySelector("span").textContent = label
    ? t("%(what)s: %(n)d marked on the timeline", { what: label, n: evidence.length }) : "";
}

function bindEvidence() {
  const evidenceData = $("#evidence") ? JSON.parse($("#evidence").textContent) : null;
  for (const button of document.querySelectorAll("button.evidence")) {
    button.addEventListener("click", () => {
      const kind = button.dataset.kind;
      if (kind === "monologue") evidence = [{ start: Number(button.dataset.start), end: Number(button.dataset.end) }];
      else if (kind === "switches") evidence = evidenceData.switches.map((at) => ({ start: at, end: at }));
      else {
        const spans = kind === "talk" ? evidenceData.talk[button.dataset.speaker] : evidenceData[kind];
        evidence = spans.map((span) => ({ start: span.start_s, end: span.end_s }));
      }
      history.replaceState(null, "", "#details");
      showTab("details");
      showEvidence(button.dataset.label);
      if (audio && evidence.length) seek(evidence[0].start);
    });
  }
}

if ($("#clear-evidence")) {
  $("#clear-evidence").addEventListener("click", () => {
    evidence = [];
    showEvidence(null);
    draw();
  });
}

// --- moments: summary items, category matches and comments lead to their place in the call ---

function goTo(seconds) {
  if (audio && PLAYS_IN_PLACE.includes(currentTab())) {
    audio.currentTime = Math.min(Math.max(0, seconds), duration());
    audio.play().catch(() => {});
    return;
  }
  showTab("details");
  history.replaceState(null, "", "#details");
  if (audio) {
    seek(seconds);
    return;
  }
  const index = lineAt(seconds + 0.05); // (no audio: the line is marked and shown)
  if (index < 0) return;
  if (currentLine) currentLine.classList.remove("current");
  currentLine = lines[index];
  currentLine.classList.add("current");
  scrollToElement(currentLine);
}

function bindMoments() {
  for (const button of document.querySelectorAll(".moment")) {
    button.addEventListener("click", () => goTo(Number(button.dataset.at)));
  }
  for (const link of document.querySelectorAll(".to-comments")) {
    link.addEventListener("click", (e) => {
      e.preventDefault();
      showTab("details");
      history.replaceState(null, "", "#details");
      scrollToElement($("#comments"));
    });
  }
}

// a new comment is left at the player's current time
const commentForm = $("#comment-form");
if (commentForm && audio) {
  const at = () => Math.round(audio.currentTime * 10) / 10;
  audio.addEventListener("timeupdate", () => { $("#comment-time").textContent = clock(at()); });
  commentForm.addEventListener("submit", () => { $("#comment-at").value = String(at()); });
}

// an evaluation in progress is kept as a draft as the supervisor goes, a moment after each change
const evaluateForm = $("#evaluate");
if (evaluateForm) {
  const status = $("#draft-status");
  let pending = null;
  const saveDraft = async () => {
    const res = await fetch(evaluateForm.dataset.draft, {
      method: "POST",
      body: new FormData(evaluateForm),
      headers: { Accept: "application/json" },
    }).catch(() => null);
    if (res && res.ok) {
      const time = new Date().toLocaleTimeString(document.documentElement.lang);
      status.textContent = t("Draft saved at %(time)s.", { time });
    } else {
      const why = res ? (await res.json().catch(() => ({}))).detail : "";
      status.textContent = t("The draft was not saved: %(why)s", { why: why || t("no connection") });
    }
  };
  const later = () => {
    clearTimeout(pending);
    pending = setTimeout(saveDraft, 800);
  };
  evaluateForm.addEventListener("input", later);
  evaluateForm.addEventListener("change", later);
  evaluateForm.addEventListener("submit", () => clearTimeout(pending));
}

// changing an automatic answer needs a reason: asked for before the form is sent
for (const form of document.querySelectorAll("form.evaluation-form")) {
  const check = () => {
    for (const question of form.querySelectorAll(".question[data-auto]")) {
      const reason = question.querySelector("input.reason");
      const chosen = question.querySelector("select").value; // (none chosen: the automatic one)
      const changed = chosen !== "" && chosen !== question.dataset.auto;
      reason.required = changed;
      reason.setCustomValidity(changed && !reason.value.trim() ? t("Say why you change the automatic answer.") : "");
    }
  };
  form.addEventListener("change", check);
  form.addEventListener("input", check);
  check();
}

// --- when processing finishes: the new panels and transcript, without reloading ------------

async function refresh() {
  const res = await fetch(location.pathname);
  if (!res.ok) return;
  const next = new DOMParser().parseFromString(await res.text(), "text/html");
  for (const id of ["summary", "overview", "metrics", "sessions"]) {
    document.getElementById(id).replaceChildren(...next.getElementById(id).childNodes);
  }
  data.marks = JSON.parse(next.getElementById("timeline-data").textContent).marks;
  const transcriptData = next.getElementById("transcript-data");
  if (transcriptData) {
    segments = JSON.parse(transcriptData.textContent);
    renderTranscript();
    describeTimeline();
  }
  data.status = "processed";
  bindEvidence();
  bindMoments();
  draw();
}

// --- start -----------------------------------------------------------------------------------

renderTranscript();
describeTimeline();
bindEvidence();
bindMoments();
showTab(TABS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "summary");
// a search carried over from the list: the same query here, its first match selected
const carried = new URLSearchParams(location.search).get("q");
if (carried && $("#search")) {
  $("#search").value = carried;
  search(carried);
}
// a line named in the address (a call found by meaning): that line selected and in view, the
// player at its start
const params = new URLSearchParams(location.search);
const named = params.has("line") ? lines[Number(params.get("line"))] : undefined;
if (named) {
  named.classList.add("named");
  named.setAttribute("aria-current", "true");
  lines.forEach((line) => (line.tabIndex = line === named ? 0 : -1));
  if (audio) audio.currentTime = segments[lines.indexOf(named)].start_s;
}
// a tab named in the address opens with the page's title in view, not scrolled to the panel
window.addEventListener("load", () => {
  const settle = () =>
    named ? scrollToElement(named) : hits.length ? scrollToElement(hits[0].marks[0]) : window.scrollTo(0, 0);
  settle();
  requestAnimationFrame(settle); // (again after the browser's own scroll to the tab's anchor)
});
