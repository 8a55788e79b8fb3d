// The draw-a-number page: draw on #pad with pointer events (mouse, pen or finger), or choose a picture or take a
// photo; send it to POST read; show the number, each digit boxed on the pad with its confidence, and "not a digit"
// plainly. Where the server keeps samples (serve --samples), one click on the right label corrects the selected
// digit and keeps it as a sample (POST samples; "remove" takes it back). It talks to its own server only
// (relative URLs), and needs no library.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const boxes = document.getElementById("boxes");
const statusLine = document.getElementById("status");
const readButton = document.getElementById("read");
const pickers = [document.getElementById("upload"), document.getElementById("camera")];

let drawn = false; // something was drawn since the last Clear
let uploaded = null; // a picture chosen or photographed, sent as it is unless drawn over
let placement = { scale: 1, left: 0, top: 0 }; // where the sent picture's pixels lie on the pad
let last = null; // the previous point of the stroke under way
let keepsSamples = false; // the server was started with --samples
let shown = null; // the reading on screen and its selected digit, for corrections
let sent = null; // the picture the reading came from (the drawing's PNG or the chosen file)

function clearPad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  clearBoxes();
  drawn = false;
  uploaded = null;
  placement = { scale: 1, left: 0, top: 0 };
  for (const picker of pickers) picker.value = "";
  say("");
}

function clearBoxes() {
  boxes.getContext("2d").clearRect(0, 0, boxes.width, boxes.height);
}

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

function point(event) {
  // the canvas may be shown at another size than its own pixels
  const box = pad.getBoundingClientRect();
  return [((event.clientX - box.left) * pad.width) / box.width, ((event.clientY - box.top) * pad.height) / box.height];
}

function stroke(from, to) {
  ink.strokeStyle = "#fff";
  ink.lineWidth = 16;
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
  if (uploaded) placement = { scale: 1, left: 0, top: 0 }; // drawn over: the pad itself is sent now
  drawn = true;
  clearBoxes();
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

function pictureChosen(picker) {
  const file = picker.files[0];
  if (!file) return;
  const picture = new Image();
  picture.onload = () => {
    // show the picture on the pad, fitted inside it; the server gets the file itself
    ink.fillStyle = "#000";
    ink.fillRect(0, 0, pad.width, pad.height);
    const scale = Math.min(pad.width / picture.width, pad.height / picture.height);
    const w = picture.width * scale;
    const h = picture.height * scale;
    placement = { scale, left: (pad.width - w) / 2, top: (pad.height - h) / 2 };
    ink.drawImage(picture, placement.left, placement.top, w, h);
    URL.revokeObjectURL(picture.src);
    read();
  };
  picture.src = URL.createObjectURL(file);
  uploaded = file;
  drawn = false;
  clearBoxes();
}

for (const picker of pickers) picker.addEventListener("change", () => pictureChosen(picker));

function padImage() {
  return new Promise((resolve) => pad.toBlob(resolve, "image/png"));
}

async function read() {
  if (!drawn && !uploaded) {
    say("Draw a digit or a number first.", true);
    return;
  }
  readButton.disabled = true;
  say("Reading...");
  try {
    const form = new FormData();
    sent = drawn || !uploaded ? new File([await padImage()], "drawing.png", { type: "image/png" }) : uploaded;
    form.append("file", sent, sent.name);
    const response = await fetch("read", { method: "POST", body: form });
    const answer = await response.json();
    if (!response.ok) {
      say(answer.error || `the server answered ${response.status}`, true);
      return;
    }
    show(answer.readings[0], answer.classes);
    say("");
  } catch (error) {
    say(`no answer from the server: ${error.message}`, true);
  } finally {
    readButton.disabled = false;
  }
}

function percent(probability) {
  return `${(100 * probability).toFixed(1)}%`;
}

function show(reading, classes) {
  const number = document.getElementById("number");
  const verdict = document.getElementById("verdict");
  number.classList.toggle("rejected", reading.not_a_digit);
  if (reading.not_a_digit) {
    number.textContent = "not a digit";
    verdict.textContent = reading.reason || "";
  } else {
    number.textContent = reading.number;
    const count = reading.digits.length;
    verdict.textContent = count === 1 ? `one digit, ${percent(reading.digits[0].probability)} sure` : `${count} digits`;
  }
  const cards = document.getElementById("digits");
  cards.replaceChildren();
  reading.digits.forEach((digit, index) => {
    const card = document.createElement("div");
    card.className = digit.not_a_digit ? "digit rejected" : "digit";
    const label = document.createElement("span");
    label.className = "digit-label";
    label.textContent = digit.not_a_digit ? "?" : digit.label;
    const confidence = document.createElement("span");
    confidence.className = "digit-confidence";
    confidence.textContent = digit.not_a_digit ? `not a digit (${digit.reason})` : `${percent(digit.probability)} sure`;
    const seen = document.createElement("img");
    seen.src = digit.image; // the 28x28 image the model saw
    seen.alt = `the 28 by 28 image the model saw for digit ${index + 1}`;
    card.append(label, confidence, seen);
    card.addEventListener("click", () => select(index, reading, classes));
    cards.append(card);
  });
  drawBoxes(reading.digits);
  shown = { reading, index: 0 };
  document.getElementById("kept").textContent = "";
  document.getElementById("correct").hidden = !keepsSamples || reading.digits.length === 0;
  if (reading.digits.length) select(0, reading, classes);
  else document.getElementById("bars").replaceChildren();
}

async function correct(label) {
  // keep the selected digit, as the model saw it, with its right label and the picture it came from
  const digit = shown.reading.digits[shown.index];
  const kept = document.getElementById("kept");
  const form = new FormData();
  form.append("label", label);
  form.append("seen", await (await fetch(digit.image)).blob(), "seen.png");
  if (sent) form.append("file", sent, sent.name);
  try {
    const response = await fetch("samples", { method: "POST", body: form });
    const answer = await response.json();
    if (!response.ok) {
      kept.textContent = answer.error || `the server answered ${response.status}`;
      return;
    }
    kept.textContent = `kept as a sample of ${label === "not-a-digit" ? "not a digit" : label} `;
    const undo = document.createElement("a");
    undo.textContent = "remove";
    undo.addEventListener("click", async () => {
      const removed = await fetch(`samples/${answer.id}`, { method: "DELETE" });
      kept.textContent = removed.ok ? "removed" : "could not remove it";
    });
    kept.append(undo);
    kept.dataset.sample = answer.id;
  } catch (error) {
    kept.textContent = `no answer from the server: ${error.message}`;
  }
}

function labelButtons() {
  const row = document.getElementById("labels");
  for (const label of ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "not-a-digit"]) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.label = label;
    button.textContent = label === "not-a-digit" ? "not a digit" : label;
    button.addEventListener("click", () => correct(label));
    row.append(button);
  }
}

function drawBoxes(digits) {
  const view = boxes.getContext("2d");
  view.clearRect(0, 0, boxes.width, boxes.height);
  view.lineWidth = 2;
  view.font = "bold 14px system-ui, sans-serif";
  for (const digit of digits) {
    const [x0, y0, x1, y1] = digit.box.map((value) => value * placement.scale);
    const left = placement.left + x0;
    const top = placement.top + y0;
    const colour = digit.not_a_digit ? "#f97066" : "#53b1fd";
    view.strokeStyle = colour;
    view.fillStyle = colour;
    view.strokeRect(left, top, x1 - x0, y1 - y0);
    const text = digit.not_a_digit ? "?" : `${digit.label} ${percent(digit.probability)}`;
    view.fillText(text, left + 2, Math.max(14, top - 4));
  }
}

function select(index, reading, classes) {
  if (shown) shown.index = index;
  document.querySelectorAll("#digits .digit").forEach((card, i) => card.classList.toggle("selected", i === index));
  const digit = reading.digits[index];
  document.getElementById("bars-caption").textContent =
    reading.digits.length === 1 ? "probability of each class" : `probability of each class, digit ${index + 1}`;
  const bars = document.getElementById("bars");
  bars.replaceChildren();
  digit.probabilities.forEach((probability, classIndex) => {
    const row = document.createElement("div");
    row.className = classIndex === digit.digit ? "bar best" : "bar";
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = classes[classIndex];
    const track = document.createElement("span");
    track.className = "bar-track";
    const fill = document.createElement("span");
    fill.className = "bar-fill";
    fill.style.display = "block";
    fill.style.width = percent(probability);
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = percent(probability);
    row.append(label, track, value);
    bars.append(row);
  });
}

readButton.addEventListener("click", read);
document.getElementById("clear").addEventListener("click", clearPad);
labelButtons();
clearPad();

fetch("health")
  .then((response) => response.json())
  .then((health) => {
    document.getElementById("model").textContent = health.model;
    keepsSamples = Boolean(health.samples);
  })
  .catch(() => {});
