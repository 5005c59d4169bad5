// The maskdet page: photos and videos to the JSON API, the camera over a WebSocket.
// Boxes on photos and videos are drawn by the server (detect.py's own drawing); only the live
// overlay is drawn here, in the colours /api/health gives.
"use strict";

const state = { token: sessionStorage.getItem("maskdet-token") || "", colors: {}, classes: [] };
const $ = (selector, root = document) => root.querySelector(selector);

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
  $("#token-form").hidden = true;
  $("#app").hidden = false;
  $("#model-info").textContent =
    `model ${health.model} at ${health.imgsz} px; classes: ${health.classes.join(", ")}; ` +
    `uploads up to ${health.max_upload_mb} MB, results kept ${health.keep_minutes} min`;
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

function newCard(name) {
  const card = $("#result-template").content.firstElementChild.cloneNode(true);
  $(".name", card).textContent = name;
  $("#results").prepend(card);
  return card;
}

function swatch(name) {
  const span = document.createElement("span");
  span.className = "swatch";
  span.style.background = state.colors[name] || "#888";
  return span;
}

function showCounts(card, counts) {
  const parts = Object.entries(counts).map(([name, n]) => `${n} ${name}`);
  $(".counts", card).textContent = parts.length ? parts.join(", ") : "no faces found";
}

function showFaces(card, detections) {
  const body = $(".faces tbody", card);
  body.textContent = "";
  detections.forEach((d, i) => {
    const row = body.insertRow();
    row.className = "face";
    row.insertCell().textContent = String(i + 1);
    const cls = row.insertCell();
    cls.append(swatch(d.class_name), d.class_name);
    row.insertCell().textContent = d.confidence.toFixed(2);
  });
  $(".faces", card).hidden = detections.length === 0;
}

function showDownloads(card, files) {
  const place = $(".downloads", card);
  place.textContent = "Download: ";
  for (const [name, url] of Object.entries(files)) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name;
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

async function detectPhoto(file, card) {
  $(".status", card).textContent = "detecting...";
  const body = await postFile("/api/detect?annotated=true&save=true", file);
  const img = document.createElement("img");
  img.className = "annotated";
  img.alt = `${file.name} with the faces found`;
  img.src = body.image;
  $(".media", card).append(img);
  $(".status", card).textContent = `${body.width}x${body.height}, ${body.inference_ms} ms`;
  showCounts(card, body.counts);
  showFaces(card, body.detections);
  showDownloads(card, body.files);
}

async function detectVideo(file, card) {
  $(".status", card).textContent = "uploading...";
  let job = await postFile("/api/videos", file);
  const bar = $(".progress", card);
  bar.hidden = false;
  while (job.status === "queued" || job.status === "running") {
    bar.value = job.progress;
    $(".status", card).textContent = `${job.status}: frame ${job.frames} of ${job.total || "?"}`;
    showCounts(card, job.counts);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const poll = await api(`/api/videos/${job.id}`);
    if (!poll.ok) throw new Error(await errorText(poll));
    job = await poll.json();
  }
  if (job.status === "failed") throw new Error(job.error);
  bar.value = 1;
  $(".status", card).textContent = `done: ${job.frames} frames`;
  showCounts(card, job.counts);
  const video = document.createElement("video");
  video.className = "annotated";
  video.controls = true;
  video.src = await fileURL(job.files["annotated.mp4"]);
  $(".media", card).append(video);
  showDownloads(card, job.files);
}

async function handleFiles(files) {
  for (const file of files) {  // one at a time: the server's pool is small by design
    const card = newCard(file.name);
    try {
      await (isVideo(file) ? detectVideo(file, card) : detectPhoto(file, card));
    } catch (err) {
      $(".status", card).textContent = err.message;
      $(".status", card).classList.add("error");
    }
  }
}

$("#files").addEventListener("change", (event) => handleFiles([...event.target.files]));
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

const live = { socket: null, stream: null, running: false, frames: 0, fps: 0, last: 0, grab: document.createElement("canvas") };

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
  const canvas = $("#overlay");
  const video = $("#camera");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const sx = canvas.width / answer.width, sy = canvas.height / answer.height;
  if (answer.blur) blurFaces(ctx, answer.blur, sx, sy);
  ctx.lineWidth = Math.max(2, Math.round(canvas.width / 300));
  ctx.font = "16px sans-serif";
  for (const d of answer.detections) {
    const color = state.colors[d.class_name] || "#ff0";
    ctx.strokeStyle = color;
    ctx.strokeRect(d.x1 * sx, d.y1 * sy, (d.x2 - d.x1) * sx, (d.y2 - d.y1) * sy);
    const label = `${d.class_name} ${d.confidence.toFixed(2)}`;
    ctx.fillStyle = color;
    ctx.fillRect(d.x1 * sx, Math.max(0, d.y1 * sy - 20), ctx.measureText(label).width + 6, 20);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, d.x1 * sx + 3, Math.max(15, d.y1 * sy - 5));
  }
  const now = performance.now();
  if (live.last) live.fps = live.fps ? 0.8 * live.fps + 0.2 * (1000 / (now - live.last)) : 1000 / (now - live.last);
  live.last = now;
  live.frames += 1;
  const counts = state.classes.map((name) => `${name} ${answer.counts[name] || 0}`).join(" · ");
  const stats = $("#live-stats");
  stats.textContent = `FPS ${live.fps.toFixed(1)} · ${counts}`;
  stats.dataset.frames = String(live.frames);
  stats.dataset.boxes = String(answer.detections.length);
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
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (err) {
    $("#live-stats").textContent = `cannot open the camera: ${err.message}`;
    return;
  }
  $("#camera").srcObject = live.stream;
  $("#camera").style.visibility = state.privacy === "blur" ? "hidden" : "";  // only blurred frames are shown
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = state.token ? `?token=${encodeURIComponent(state.token)}` : "";
  live.socket = new WebSocket(`${scheme}://${location.host}/api/live${query}`);
  live.running = true;
  live.socket.onopen = sendFrame;
  live.socket.onmessage = (event) => {
    const answer = JSON.parse(event.data);
    if (answer.error) {
      $("#live-stats").textContent = answer.error;
      setTimeout(sendFrame, 1000 * (answer.retry_after || 1));
      return;
    }
    drawLive(answer);
    sendFrame();
  };
  live.socket.onclose = (event) => { if (live.running) { $("#live-stats").textContent = `connection closed ${event.reason}`; stopCamera(); } };
  $("#camera-button").textContent = "Stop camera";
}

function stopCamera() {
  live.running = false;
  if (live.socket) live.socket.close();
  if (live.stream) live.stream.getTracks().forEach((track) => track.stop());
  live.socket = live.stream = null;
  $("#camera-button").textContent = "Use my camera";
}

$("#camera-button").addEventListener("click", () => (live.running ? stopCamera() : startCamera()));

start();
