// The label queue, one review at a time: ← negative, → positive, space skips. Each label is
// posted as ordinary feedback; when the queue shown runs out, the next one is fetched, less the
// reviews skipped on this page (asking for as many more as were skipped, up to a page's most).
(function () {
  const root = document.getElementById("labeling");
  const list = document.getElementById("label-queue");
  const status = document.getElementById("label-status");
  const buttons = root.querySelector(".label-buttons");
  const skipped = new Set();
  const MAX_PER_PAGE = 100;
  let busy = false;

  const current = () => list.querySelector("li:not([hidden])");
  const show = () => {
    const items = [...list.children];
    items.forEach((item, i) => (item.hidden = i > 0));
    buttons.hidden = items.length === 0;
    if (items.length) return;
    status.textContent = skipped.size
      ? "Nothing left to label but the reviews you skipped."
      : "Nothing to label: every scored review has a label.";
  };
  const refill = async () => {
    const perPage = Math.min(MAX_PER_PAGE, Number(root.dataset.batch) + skipped.size);
    const response = await fetch(`${root.dataset.queue}?per_page=${perPage}`, {
      headers: { Accept: "application/json" },
    });
    const { items } = await response.json();
    for (const review of items.filter((r) => !skipped.has(r.id))) {
      const item = document.createElement("li");
      item.dataset.id = review.id;
      const text = document.createElement("blockquote");
      text.className = "text";
      text.textContent = review.text;
      const hint = document.createElement("p");
      hint.className = "hint";
      hint.textContent = `Scored ${review.score.toFixed(3)} by ${review.model_version}`;
      item.append(text, hint);
      list.append(item);
    }
    show();
  };
  const next = async () => {
    current().remove();
    if (!list.children.length) await refill();
    show();
  };
  const answer = async (label) => {
    const item = current();
    if (!item || busy) return;
    if (!label) {
      skipped.add(Number(item.dataset.id));
      status.textContent = "Skipped.";
      return next();
    }
    busy = true;
    const url = root.dataset.feedback.replace("/0/", `/${item.dataset.id}/`);
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ label }),
      });
      if (response.ok) {
        status.textContent = `Labeled ${label}.`;
        await next();
      } else {
        const body = await response.json();
        status.textContent = body.error ? body.error.message : `Not recorded (${response.status}).`;
      }
    } finally {
      busy = false;
    }
  };
  const keys = { ArrowLeft: "negative", ArrowRight: "positive", " ": "" };
  document.addEventListener("keydown", (event) => {
    if (!(event.key in keys) || event.target.closest("input, textarea, select, button")) return;
    event.preventDefault();
    answer(keys[event.key]);
  });
  buttons.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button) answer(button.dataset.label);
  });
  show();
})();
