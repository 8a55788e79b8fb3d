// The draw-a-digit page: draw on #pad with pointer events (mouse, pen or finger), send the drawing as a PNG
// to POST predict, show the answer. It talks to its own server only (relative URLs), and needs no library.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const seen = document.getElementById("seen");
const statusLine = document.getElementById("status");
const recogniseButton = document.getElementById("recognise");
const upload = document.getElementById("upload");

let drawn = false; // something was drawn since the last Clear
let uploaded = null; // a picture chosen with "upload a picture", sent as it is unless drawn over
let last = null; // the previous point of the stroke under way

function clearPad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  drawn = false;
  uploaded = null;
  upload.value = "";
  say("");
}

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

function point(event) {
  // the canvas may be drawn at another size than its 280x280 pixels
  const box = pad.getBoundingClientRect();
  return [((event.clientX - box.left) * pad.width) / box.width, ((event.clientY - box.top) * pad.height) / box.height];
}

function stroke(from, to) {
  ink.strokeStyle = "#fff";
  ink.lineWidth = 20;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  ink.beginPath();
  ink.moveTo(from[0], from[1]);
  ink.lineTo(to[0], to[1]);
  ink.stroke();
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  last = point(event);
  stroke(last, last); // a dot, for a tap
  drawn = true;
});

pad.addEventListener("pointermove", (event) => {
  if (last === null) return;
  const next = point(event);
  stroke(last, next);
  last = next;
});

for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
  pad.addEventListener(name, () => {
    last = null;
  });
}

upload.addEventListener("change", () => {
  const file = upload.files[0];
  if (!file) return;
  const picture = new Image();
  picture.onload = () => {
    // show the picture on the pad, fitted inside it; the server gets the file itself
    ink.fillStyle = "#000";
    ink.fillRect(0, 0, pad.width, pad.height);
    const scale = Math.min(pad.width / picture.width, pad.height / picture.height);
    const w = picture.width * scale;
    const h = picture.height * scale;
    ink.drawImage(picture, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    URL.revokeObjectURL(picture.src);
  };
  picture.src = URL.createObjectURL(file);
  uploaded = file;
  drawn = false;
  recognise();
});

function padImage() {
  return new Promise((resolve) => pad.toBlob(resolve, "image/png"));
}

async function recognise() {
  if (!drawn && !uploaded) {
    say("Draw a digit first.", true);
    return;
  }
  recogniseButton.disabled = true;
  say("Recognising...");
  try {
    const form = new FormData();
    if (drawn || !uploaded) form.append("file", await padImage(), "drawing.png");
    else form.append("file", uploaded, uploaded.name);
    const response = await fetch("predict", { method: "POST", body: form });
    const answer = await response.json();
    if (!response.ok) {
      say(answer.error || `the server answered ${response.status}`, true);
      return;
    }
    show(answer.predictions[0], answer.classes);
    say("");
  } catch (error) {
    say(`no answer from the server: ${error.message}`, true);
  } finally {
    recogniseButton.disabled = false;
  }
}

function show(prediction, classes) {
  document.getElementById("digit").textContent = prediction.label;
  document.getElementById("confidence").textContent = `${(100 * prediction.probability).toFixed(1)}% sure`;
  const bars = document.getElementById("bars");
  bars.replaceChildren();
  prediction.probabilities.forEach((probability, index) => {
    const row = document.createElement("div");
    row.className = index === prediction.digit ? "bar best" : "bar";
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = classes[index];
    const track = document.createElement("span");
    track.className = "bar-track";
    const fill = document.createElement("span");
    fill.className = "bar-fill";
    fill.style.display = "block";
    fill.style.width = `${(100 * probability).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = `${(100 * probability).toFixed(1)}%`;
    row.append(label, track, value);
    bars.append(row);
  });
  const picture = new Image();
  picture.onload = () => {
    const view = seen.getContext("2d");
    view.imageSmoothingEnabled = false; // each of the 28x28 pixels as a square
    view.drawImage(picture, 0, 0, seen.width, seen.height);
    seen.dataset.drawn = "yes";
  };
  picture.src = prediction.image;
}

recogniseButton.addEventListener("click", recognise);
document.getElementById("clear").addEventListener("click", clearPad);
clearPad();

fetch("health")
  .then((response) => response.json())
  .then((health) => {
    document.getElementById("model").textContent = health.model;
  })
  .catch(() => {});
