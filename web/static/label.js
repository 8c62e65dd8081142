// The label queue, one review at a time: ← negative, → positive, space skips. Each label is
// posted as ordinary feedback; when the queue shown runs out, it is fetched again, page after
// page, until a page holds a review not skipped on this page or the queue ends.
(function () {
  const root = document.getElementById("labeling");
  const list = document.getElementById("label-queue");
  const status = document.getElementById("label-status");
  const buttons = root.querySelector(".label-buttons");
  const skipped = new Set();
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
  const add = (review) => {
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
  };
  const failure = async (response) => {
    const body = await response.json().catch(() => ({}));
    return body.error ? body.error.message : `the service answered ${response.status}`;
  };
  const refill = async () => {
    const perPage = Number(root.dataset.batch);
    for (let page = 1; ; page += 1) {
      const response = await fetch(`${root.dataset.queue}?per_page=${perPage}&page=${page}`, {
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(await failure(response));
      const { items } = await response.json();
      const fresh = items.filter((r) => !skipped.has(r.id));
      fresh.forEach(add);
      if (fresh.length || items.length < perPage) return;
    }
  };
  const next = async () => {
    current().remove();
    if (!list.children.length) {
      try {
        await refill();
      } catch (error) {
        buttons.hidden = true;
        const reason = error instanceof TypeError ? "the service could not be reached" : error.message;
        status.textContent = `Could not fetch more reviews to label: ${reason}. Reload the page to try again.`;
        return;
      }
    }
    show();
  };
  const answer = async (label) => {
    const item = current();
    if (!item || busy) return;
    busy = true;
    try {
      if (!label) {
        skipped.add(Number(item.dataset.id));
        status.textContent = "Skipped.";
        await next();
        return;
      }
      const url = root.dataset.feedback.replace("/0/", `/${item.dataset.id}/`);
      let response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ label }),
        });
      } catch {
        status.textContent = "Not recorded: the service could not be reached. Try again.";
        return;
      }
      if (!response.ok) {
        status.textContent = `Not recorded: ${await failure(response)}.`;
        return;
      }
      status.textContent = `Labeled ${label}.`;
      await next();
    } finally {
      busy = false;
    }
  };
  const keys = { ArrowLeft: "negative", ArrowRight: "positive", " ": "" };
  document.addEventListener("keydown", (event) => {
    const modified = event.altKey || event.ctrlKey || event.metaKey || event.repeat;
    if (!(event.key in keys) || modified || event.target.closest("input, textarea, select, button"))
      return;
    event.preventDefault();
    answer(keys[event.key]);
  });
  buttons.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    button.blur(); // so that the keys go on meaning what they say, not "press this button"
    answer(button.dataset.label);
  });
  show();
})();
