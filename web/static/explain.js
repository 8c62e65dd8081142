// "Why?": asks for the explanation of the review's score, polls until a worker has made it, then
// shows each word shaded by its weight, the words that pushed hardest each way, and the score
// sentence by sentence. Review text only ever goes in as text nodes, never as HTML.
(function () {
  const why = document.getElementById("why");
  const button = document.getElementById("why-button");
  const status = document.getElementById("why-status");
  const TOP = 5; // words listed each way
  const SVG = "http://www.w3.org/2000/svg";

  const say = (message, failed) => {
    status.textContent = message;
    status.className = failed ? "error" : "hint";
    status.hidden = false;
  };
  const signed = (weight) => (weight < 0 ? "−" : "+") + Math.abs(weight).toFixed(2);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  const request = async (url, method = "GET") => {
    const response = await fetch(url, { method, headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(`Could not explain it: ${body.error.message}.`);
    return body;
  };

  const word = (text, weight, strongest) => {
    const span = document.createElement("span");
    span.className = weight > 0 ? "word pos" : weight < 0 ? "word neg" : "word";
    span.style.setProperty("--strength", Math.min(Math.abs(weight) / strongest, 1));
    span.title = `weight ${signed(weight)}`;
    span.textContent = text;
    return span;
  };

  const showWords = (chars, tokens, strongest) => {
    const box = document.getElementById("words");
    box.replaceChildren();
    let at = 0;
    for (const token of tokens) {
      const span = word(token.text, token.weight, strongest);
      const spoken = document.createElement("span");
      spoken.className = "sr-only";
      spoken.textContent = ` (${signed(token.weight)})`;
      span.append(spoken);
      box.append(chars.slice(at, token.start).join(""), span);
      at = token.end;
    }
    box.append(chars.slice(at).join(""));
  };

  const list = (id, words, strongest) => {
    const items = words.map(([text, weight]) => {
      const item = document.createElement("li");
      item.append(word(text, weight, strongest), ` ${signed(weight)}`);
      return item;
    });
    if (!items.length) {
      items.push(document.createElement("li"));
      items[0].className = "none";
      items[0].textContent = "none";
    }
    document.getElementById(id).replaceChildren(...items);
  };

  // A word's copies share its effect (sentiment_inference/explain.py): list each word once.
  const showTop = (tokens, strongest) => {
    const totals = new Map();
    for (const { text, weight } of tokens) {
      const key = text.toLowerCase();
      totals.set(key, (totals.get(key) || 0) + weight);
    }
    const ranked = [...totals].sort((a, b) => b[1] - a[1]);
    list("top-positive", ranked.filter(([, w]) => w > 0).slice(0, TOP), strongest);
    list("top-negative", ranked.filter(([, w]) => w < 0).reverse().slice(0, TOP), strongest);
  };

  const shape = (name, attributes, text) => {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const plot = (points, length) => {
    const [left, right, top, bottom] = [40, 410, 10, 110]; // the plot area in the view box
    const x = (end) => left + ((right - left) * end) / length;
    const y = (score) => bottom - (bottom - top) * score;
    const scores = points.map((p) => p.score.toFixed(2)).join(", ");
    const summary = `Probability positive after each sentence: ${scores}.`;
    const svg = shape("svg", { viewBox: "0 0 420 132", role: "img", "aria-label": summary });
    svg.append(
      shape("title", {}, summary),
      shape("rect", { x: left, y: top, width: right - left, height: bottom - top, class: "frame" }),
      shape("line", { x1: left, x2: right, y1: y(0.5), y2: y(0.5), class: "midline" }),
      ...[1, 0.5, 0].map((s) => shape("text", { x: left - 6, y: y(s) + 4, class: "tick" }, s)),
      shape("text", { x: left, y: 128, class: "axis" }, "start of the review"),
      shape("text", { x: right, y: 128, class: "axis end" }, "end"),
      shape("polyline", { points: points.map((p) => `${x(p.end)},${y(p.score)}`).join(" ") }),
      ...points.map((p, i) => {
        const dot = shape("circle", { cx: x(p.end), cy: y(p.score), r: 4 });
        dot.append(shape("title", {}, `After sentence ${i + 1}: ${p.score.toFixed(2)}`));
        return dot;
      }),
    );
    document.getElementById("running").replaceChildren(svg);
  };

  const show = (text, explanation) => {
    const tokens = explanation.tokens;
    const strongest = tokens.reduce((most, t) => Math.max(most, Math.abs(t.weight)), 0) || 1;
    // Offsets count code points, as Python does; JavaScript strings count UTF-16 units.
    const chars = Array.from(text);
    document.getElementById("why-summary").textContent =
      `Model ${explanation.model_version} (${explanation.method}) gives it ` +
      `probability positive ${explanation.score.toFixed(3)}.`;
    document.getElementById("strongest").textContent = strongest.toFixed(2);
    showWords(chars, tokens, strongest);
    showTop(tokens, strongest);
    plot(explanation.running_scores, chars.length);
    document.getElementById("explanation").hidden = false;
  };

  button.addEventListener("click", async () => {
    button.disabled = true;
    say("Working out why…", false);
    try {
      let explanation = await request(why.dataset.url, "POST");
      for (let delay = 200; explanation.status === "queued"; delay = Math.min(delay * 1.5, 2000)) {
        await sleep(delay);
        explanation = await request(why.dataset.url);
      }
      if (explanation.status === "failed") {
        throw new Error(`The explanation failed: ${explanation.error}.`);
      }
      const review = await request(document.getElementById("result").dataset.url);
      show(review.text, explanation);
      status.hidden = true;
      button.hidden = true;
    } catch (err) {
      const unreachable = err instanceof TypeError; // what fetch throws when the network fails
      say(unreachable ? "The service could not be reached; try again." : err.message, true);
      button.disabled = false;
    }
  });
})();
