// Polls the review's API URL until it is scored or failed, then fills in the result.
(function () {
  const section = document.getElementById("result");
  const finished = (status) => status === "done" || status === "failed";
  const show = (review) => {
    document.getElementById("status").textContent = review.status;
    if (review.sentiment) {
      document.getElementById("sentiment").textContent = review.sentiment;
      document.getElementById("score").textContent = review.score.toFixed(3);
      document.getElementById("bar").style.width = (review.score * 100).toFixed(1) + "%";
      document.getElementById("model").textContent = review.model_version;
      document.getElementById("verdict").hidden = false;
      document.getElementById("feedback").hidden = review.status !== "done";
      document.getElementById("why").hidden = review.status !== "done";
    }
    if (review.error) {
      const error = document.getElementById("error");
      error.textContent = review.error;
      error.hidden = false;
    }
  };
  const poll = async (delay) => {
    try {
      const response = await fetch(section.dataset.url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const review = await response.json();
        show(review);
        if (finished(review.status)) return;
      }
    } catch (err) {
      // A dropped connection is retried on the next tick.
    }
    setTimeout(() => poll(Math.min(delay * 1.5, 2000)), delay);
  };
  if (!finished(section.dataset.status)) poll(200);
})();
