// The maskdet page: photos and videos to the JSON API, the camera over a WebSocket.
// Photos: the browser shows the photo itself with the boxes as HTML on top of it (readable labels at any
// size, numbered like the table, filtered by the confidence slider); the server's drawing (detect.py's)
// is the fallback for formats the browser cannot show, and the download. Videos are drawn by the server;
// their people (tracked, one verdict each) come as people.json and are drawn as a timeline.
"use strict";

const state = { token: sessionStorage.getItem("maskdet-token") || "", colors: {}, classes: [], conf: 0.25, serverConf: 0.25 };
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// What a person reads instead of the model's class names.
const LABELS = { with_mask: "mask worn", without_mask: "no mask", mask_weared_incorrect: "mask worn incorrectly" };
const label = (name) => LABELS[name] || String(name).replaceAll("_", " ");
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

function authHeaders() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  if (response.status === 401) {
    askToken("the token was refused");
    throw new Error("this server needs a token");
  }
  return response;
}

async function errorText(response) {
  try {
    const body = await response.json();
    const wait = response.headers.get("Retry-After");
    return (body.error || response.statusText) + (wait ? ` (try again in ${wait} s)` : "");
  } catch (e) {
    return `${response.status} ${response.statusText}`;
  }
}

function askToken(message) {
  $("#token-form").hidden = false;
  $("#app").hidden = true;
  $("#token-error").textContent = state.token ? message : "";
  $("#token").focus();
}

async function start() {
  const response = await fetch("/api/health", { headers: authHeaders() });
  if (response.status === 401) {
    askToken("the token was refused");
    return;
  }
  const health = await response.json();
  state.colors = health.colors || {};
  state.classes = health.classes;
  state.privacy = health.privacy || "off";  // "blur": the camera is shown only as analysed frames, faces blurred
  state.serverConf = state.conf = health.conf;
  const slider = $("#conf");
  slider.min = String(Math.min(0.95, Math.ceil(health.conf * 20) / 20));  // below the server's --conf there is nothing to show
  slider.value = slider.min;
  state.conf = Number(slider.value);
  $("#conf-value").textContent = state.conf.toFixed(2);
  $("#token-form").hidden = true;
  $("#app").hidden = false;
  $("#model-info").textContent =
    `Finds faces and tells: ${health.classes.map(label).join(", ")}. ` +
    `Photos and videos up to ${health.max_upload_mb} MiB; results are kept ${health.keep_minutes} minutes, ` +
    "and deleted when the server stops. " +
    `(model ${health.model} at ${health.imgsz} px)`;
}

$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem("maskdet-token", state.token);
  start();
});

// --- photos and videos ---------------------------------------------------------------------

function isVideo(file) {
  return file.type.startsWith("video/") || /\.(mp4|mov|m4v|mkv|webm|avi|mpe?g|ts)$/i.test(file.name);
}

function stem(name) {
  return name.replace(/\.[^.]*$/, "") || "result";
}

function newCard(name) {
  const card = $("#result-template").content.firstElementChild.cloneNode(true);
  $(".name", card).textContent = name;
  $("#results").prepend(card);
  return card;
}

function badge(text, name) {
  const span = document.createElement("span");
  span.className = "tag";
  span.style.background = state.colors[name] || "#555";
  span.textContent = text;
  return span;
}

function countsText(counts, noun = ["face", "faces"]) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  if (!total) return `no ${noun[1]} found`;
  const order = [...state.classes, ...Object.keys(counts).filter((n) => !state.classes.includes(n))];
  const parts = order.filter((n) => counts[n]).map((n) => `${counts[n]} ${label(n)}`);
  return `${plural(total, ...noun)}: ${parts.join(", ")}`;
}

// The names the downloads are saved under: the source's name, not predictions.csv for every file.
const DOWNLOADS = {
  "annotated.png": ["photo with boxes", (s) => `${s}_annotated.png`],
  "annotated.jpg": ["photo with boxes", (s) => `${s}_annotated.jpg`],
  "annotated.mp4": ["video with boxes", (s) => `${s}_annotated.mp4`],
  "predictions.csv": ["table (CSV)", (s) => `${s}_faces.csv`],
  "predictions.json": ["data (JSON)", (s) => `${s}_faces.json`],
  "people.json": ["people (JSON)", (s) => `${s}_people.json`],
};

function downloadName(source, key) {
  const known = DOWNLOADS[key] || DOWNLOADS[key.replace(/^annotated\.\w+$/, "annotated.png")];
  return known ? known[1](stem(source)) : `${stem(source)}_${key}`;
}

function showDownloads(card, files, source) {
  const place = $(".downloads", card);
  place.textContent = "";
  const heading = document.createElement("span");
  heading.textContent = "Download:";
  place.append(heading);
  for (const [key, url] of Object.entries(files)) {
    const name = downloadName(source, key);
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = (DOWNLOADS[key] || [key])[0];
    button.title = `saves ${name}`;
    button.dataset.name = name;
    button.addEventListener("click", () => download(url, name));
    place.append(button);
  }
}

async function fileURL(url) {
  const response = await api(url);
  if (!response.ok) throw new Error(await errorText(response));
  return URL.createObjectURL(await response.blob());
}

async function download(url, name) {
  const link = document.createElement("a");
  link.href = await fileURL(url);  // fetched with the token, which a plain link could not send
  link.download = name;
  link.click();
}

async function postFile(path, file) {
  const form = new FormData();
  form.append("file", file);
  const response = await api(path, { method: "POST", body: form });
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

function loadImage(src) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => resolve(null);
    img.src = src;
  });
}

async function detectPhoto(file, card) {
  $(".status", card).textContent = "looking for faces...";
  const body = await postFile("/api/detect?annotated=true&save=true", file);
  const { width: w, height: h } = body;
  // The photo as the browser decodes it, when that is the picture the server saw (same size);
  // otherwise (TIFF, a mismatch) the server's drawing.
  let img = await loadImage(URL.createObjectURL(file));
  const own = img && img.naturalWidth === w && img.naturalHeight === h;
  if (!own) img = await loadImage(body.image);
  const figure = document.createElement("div");
  figure.className = "photo";
  figure.dataset.drawn = own ? "page" : "server";
  // As wide as the column allows, never wider than the photo, never taller than most of the screen.
  figure.style.maxWidth = `min(${w}px, calc(80vh * ${(w / h).toFixed(4)}))`;
  img.className = "annotated";
  img.alt = `${file.name} with the faces found`;
  figure.append(img);
  if (own) {
    body.detections.forEach((d, i) => {
      const box = document.createElement("div");
      box.className = "box";
      box.dataset.index = String(i);
      Object.assign(box.style, {
        left: `${(100 * d.x1) / w}%`, top: `${(100 * d.y1) / h}%`,
        width: `${(100 * (d.x2 - d.x1)) / w}%`, height: `${(100 * (d.y2 - d.y1)) / h}%`,
        borderColor: state.colors[d.class_name] || "#ff0",
      });
      box.title = `${i + 1}: ${label(d.class_name)} (${d.confidence.toFixed(2)})`;
      box.append(badge(String(i + 1), d.class_name));
      figure.append(box);
    });
  }
  $(".media", card).append(figure);
  card.classList.add("photo-result");
  card.detections = body.detections;
  showFaces(card, body.detections);
  showDownloads(card, body.files, file.name);
  applyConf(card);
}

function showFaces(card, detections) {
  const body = $(".faces tbody", card);
  body.textContent = "";
  detections.forEach((d, i) => {
    const row = body.insertRow();
    row.className = "face";
    row.dataset.index = String(i);
    row.insertCell().append(badge(String(i + 1), d.class_name));
    row.insertCell().textContent = label(d.class_name);
    row.insertCell().textContent = d.confidence.toFixed(2);
    // Pointing at a row shows its box.
    row.addEventListener("mouseenter", () => $$(`.box[data-index="${i}"]`, card).forEach((b) => b.classList.add("hot")));
    row.addEventListener("mouseleave", () => $$(".box.hot", card).forEach((b) => b.classList.remove("hot")));
  });
  $(".faces", card).hidden = detections.length === 0;
}

function applyConf(card) {
  const shown = card.detections.filter((d) => d.confidence >= state.conf);
  for (const el of $$("[data-index]", card)) el.hidden = card.detections[Number(el.dataset.index)].confidence < state.conf;
  const counts = {};
  for (const d of shown) counts[d.class_name] = (counts[d.class_name] || 0) + 1;
  $(".counts", card).textContent = countsText(counts);
  const hidden = card.detections.length - shown.length;
  $(".status", card).textContent = hidden ? `${plural(hidden, "face", "faces")} below confidence ${state.conf.toFixed(2)} hidden` : "";
  $(".faces", card).hidden = shown.length === 0;
}

$("#conf").addEventListener("input", (event) => {
  state.conf = Number(event.target.value);
  $("#conf-value").textContent = state.conf.toFixed(2);
  $$(".photo-result").forEach(applyConf);
});

function formatTime(s) {
  const m = Math.floor(s / 60);
  return m ? `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}` : `${s.toFixed(1)} s`;
}

function showTimeline(card, people, video) {
  // One lane per person, from first to last seen, coloured by verdict; a click plays from there.
  const duration = Math.max(people.duration || 0, ...people.people.map((p) => p.last), 0.1);
  const timeline = document.createElement("div");
  timeline.className = "timeline";
  timeline.setAttribute("aria-label", "when each person was in view");
  const lane = Math.max(2, Math.min(10, Math.floor(320 / people.people.length)));  // a crowd stays within ~400 px
  for (const p of people.people) {
    const bar = document.createElement("button");
    bar.type = "button";
    bar.className = "lane";
    bar.dataset.verdict = p.verdict;
    bar.style.left = `${(100 * p.first) / duration}%`;
    bar.style.width = `max(4px, ${(100 * (p.last - p.first)) / duration}%)`;
    bar.style.background = state.colors[p.verdict] || "#888";
    bar.title = `person ${p.id}: ${label(p.verdict)}, ${formatTime(p.first)} to ${formatTime(p.last)}`;
    bar.addEventListener("click", () => { video.currentTime = p.first; video.play().catch(() => {}); });
    const row = document.createElement("div");
    row.className = "row";
    row.style.height = `${lane}px`;
    row.style.margin = `${lane > 4 ? 2 : 1}px 0`;
    row.append(bar);
    timeline.append(row);
  }
  const head = document.createElement("div");
  head.className = "playhead";
  timeline.append(head);
  video.addEventListener("timeupdate", () => { head.style.left = `${(100 * video.currentTime) / duration}%`; });
  const scale = document.createElement("p");
  scale.className = "scale";
  scale.textContent = `0 s — ${formatTime(duration)}: when each person was in view (click a bar to play from there)`;
  $(".media", card).append(timeline, scale);
}

async function detectVideo(file, card) {
  card.classList.add("video-result");
  $(".status", card).textContent = "uploading...";
  let job = await postFile("/api/videos", file);
  const bar = $(".progress", card);
  bar.hidden = false;
  while (job.status === "queued" || job.status === "running") {
    bar.value = job.progress;
    $(".status", card).textContent = job.status === "queued" ? "waiting for the server..."
      : `working: frame ${job.frames} of ${job.total || "?"}`;
    $(".counts", card).textContent = `so far ${countsText(job.counts, ["person", "people"])}`;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const poll = await api(`/api/videos/${job.id}`);
    if (!poll.ok) throw new Error(await errorText(poll));
    job = await poll.json();
  }
  if (job.status === "failed") throw new Error(job.error);
  // Done, but not to the end (a truncated file): the result shows what was read, and the card says so.
  const stoppedEarly = job.warning ? ` Warning: ${job.warning}` : "";
  bar.value = 1;
  bar.hidden = true;
  const video = document.createElement("video");
  video.className = "annotated";
  video.controls = true;
  video.src = await fileURL(job.files["annotated.mp4"]);
  $(".media", card).append(video);
  let people = null;
  if (job.files["people.json"]) {
    const response = await api(job.files["people.json"]);
    if (response.ok) people = await response.json();
  }
  if (people) {
    const counts = {};
    for (const p of people.people) counts[p.verdict] = (counts[p.verdict] || 0) + 1;
    $(".counts", card).textContent = countsText(counts, ["person", "people"]);
    $(".status", card).textContent = `Done: ${formatTime(people.duration)} of video, ${job.frames} frames. ` +
      "Each person is counted once, with the verdict of most of their frames." + stoppedEarly;
    if (people.people.length) showTimeline(card, people, video);
  } else {
    $(".status", card).textContent = `Done: ${job.frames} frames.` + stoppedEarly;
    $(".counts", card).textContent = "";
  }
  showDownloads(card, job.files, file.name);
}

async function handleFiles(files) {
  for (const file of files) {  // one at a time: the server's pool is small by design
    const card = newCard(file.name);
    try {
      await (isVideo(file) ? detectVideo(file, card) : detectPhoto(file, card));
    } catch (err) {
      $(".status", card).textContent = err.message;
      $(".status", card).classList.add("error");
      $(".progress", card).hidden = true;
    }
  }
}

$("#choose").addEventListener("click", () => $("#files").click());
$("#files").addEventListener("change", (event) => { handleFiles([...event.target.files]); event.target.value = ""; });
const drop = $("#drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  handleFiles([...event.dataTransfer.files]);
});

// --- live camera ---------------------------------------------------------------------------
// One frame in flight at a time: the next is grabbed only when the answer to the last arrives,
// so it is always the newest one and the delay cannot grow however slow the model is.

// A hidden page lets the camera go (its light goes off, its --max-live place is given back: a browser may stop a
// background tab's frames, and the server would close a quiet camera after --live-timeout) and takes it again
// when shown.
const live = { socket: null, stream: null, running: false, resume: false, frames: 0, fps: 0, last: 0,
               grab: document.createElement("canvas") };

function sendFrame() {
  const video = $("#camera");
  if (!live.running) return;
  if (!video.videoWidth) { setTimeout(sendFrame, 100); return; }
  live.grab.width = video.videoWidth;
  live.grab.height = video.videoHeight;
  live.grab.getContext("2d").drawImage(video, 0, 0);
  live.grab.toBlob((blob) => { if (live.running && blob) live.socket.send(blob); }, "image/jpeg", 0.8);
}

function drawLive(answer) {
  if (!live.running) return;  // an answer that arrives after Stop draws nothing
  const canvas = $("#overlay");
  const video = $("#camera");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const sx = canvas.width / answer.width, sy = canvas.height / answer.height;
  if (answer.blur) blurFaces(ctx, answer.blur, sx, sy);  // every face found, whatever the slider shows
  const px = canvas.width / Math.max(1, canvas.clientWidth);  // canvas pixels per CSS pixel: labels stay ~14 px on screen
  ctx.lineWidth = Math.max(2, Math.round(2 * px));
  const font = Math.round(14 * px);
  ctx.font = `600 ${font}px system-ui, sans-serif`;
  const shown = answer.detections.filter((d) => d.confidence >= state.conf);
  for (const d of shown) {
    const color = state.colors[d.class_name] || "#ff0";
    ctx.strokeStyle = color;
    ctx.strokeRect(d.x1 * sx, d.y1 * sy, (d.x2 - d.x1) * sx, (d.y2 - d.y1) * sy);
    const text = label(d.class_name);
    const tw = ctx.measureText(text).width + font * 0.5, th = font * 1.3;
    const y = d.y1 * sy >= th ? d.y1 * sy - th : d.y1 * sy;  // above the box, or inside it at the top edge
    ctx.fillStyle = color;
    ctx.fillRect(d.x1 * sx, y, tw, th);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, d.x1 * sx + font * 0.25, y + font * 1.0);
  }
  const now = performance.now();
  if (live.last) live.fps = live.fps ? 0.8 * live.fps + 0.2 * (1000 / (now - live.last)) : 1000 / (now - live.last);
  live.last = now;
  live.frames += 1;
  const counts = {};
  for (const d of shown) counts[d.class_name] = (counts[d.class_name] || 0) + 1;
  const stats = $("#live-stats");
  stats.textContent = `Live, ${live.fps.toFixed(1)} frames a second. In view: ` +
    state.classes.map((name) => `${label(name)} ${counts[name] || 0}`).join(" · ");
  stats.dataset.frames = String(live.frames);
  stats.dataset.boxes = String(shown.length);
}

// serve.py --privacy blur: the frame that was analysed covers the camera, its face regions blurred.
function blurFaces(ctx, boxes, sx, sy) {
  ctx.drawImage(live.grab, 0, 0, ctx.canvas.width, ctx.canvas.height);
  for (const [x1, y1, x2, y2] of boxes) {
    const w = (x2 - x1) * sx, h = (y2 - y1) * sy;
    ctx.save();
    ctx.beginPath();
    ctx.rect(x1 * sx, y1 * sy, w, h);
    ctx.clip();
    ctx.filter = `blur(${Math.max(6, Math.max(w, h) / 6)}px)`;
    ctx.drawImage(live.grab, 0, 0, ctx.canvas.width, ctx.canvas.height);
    ctx.restore();
  }
}

async function startCamera() {
  $("#live").hidden = false;
  $("#live-stats").textContent = "starting the camera...";
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (err) {
    $("#live-stats").textContent = `Cannot open the camera (${err.message}).`;
    return;
  }
  if (document.hidden) {  // hidden while the camera was opening: wait to be shown
    live.stream.getTracks().forEach((track) => track.stop());
    live.stream = null;
    live.resume = true;
    return;
  }
  $("#camera").srcObject = live.stream;
  $("#camera").style.visibility = state.privacy === "blur" ? "hidden" : "";  // only blurred frames are shown
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = state.token ? `?token=${encodeURIComponent(state.token)}` : "";
  live.socket = new WebSocket(`${scheme}://${location.host}/api/live${query}`);
  live.running = true;
  live.frames = live.fps = live.last = 0;
  live.socket.onopen = sendFrame;
  live.socket.onmessage = (event) => {
    const answer = JSON.parse(event.data);
    if (answer.error) {
      $("#live-stats").textContent = answer.error === "busy" ? "The server is busy, trying again..." : answer.error;
      setTimeout(sendFrame, 1000 * (answer.retry_after || 1));
      return;
    }
    drawLive(answer);
    sendFrame();
  };
  live.socket.onclose = (event) => {  // the server says why it closed (busy, a quiet camera): the page says it too
    if (live.running) stopCamera(event.reason ? `The server closed the camera: ${event.reason}. The camera is off.`
                                              : "The connection to the server was lost: the camera is off.");
  };
  $("#camera-button").textContent = "Stop camera";
}

function stopCamera(message = "The camera is off.") {
  live.running = live.resume = false;
  if (live.socket) live.socket.close();
  if (live.stream) live.stream.getTracks().forEach((track) => track.stop());
  live.socket = live.stream = null;
  // Nothing from the last frame stays on screen as if it were live.
  const canvas = $("#overlay");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  $("#camera").srcObject = null;
  $(".live-view").hidden = true;
  const stats = $("#live-stats");
  stats.textContent = message;
  stats.dataset.boxes = "0";
  $("#camera-button").textContent = "Use my camera";
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden && live.running) {
    stopCamera("Paused while the page is hidden: the camera comes back when you return to it.");
    live.resume = true;
  } else if (!document.hidden && live.resume) {
    live.resume = false;
    $(".live-view").hidden = false;
    startCamera();
  }
});

$("#camera-button").addEventListener("click", () => {
  if (live.running) {
    stopCamera();
  } else {
    $(".live-view").hidden = false;
    startCamera();
  }
});

start();
