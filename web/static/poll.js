// Waits on the review's API URL (a long poll: the server answers as soon as the review is scored
// or failed, or after 25 s with its status), then fills in the result.
(function () {
  const section = document.getElementById("result");
  const WAIT_S = 25; // under the server's 30 s limit and most proxies' idle timeouts
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
  const wait = async () => {
    try {
      const response = await fetch(`${section.dataset.url}?wait=${WAIT_S}`, {
        headers: { Accept: "application/json" },
      });
      if (response.ok) {
        const review = await response.json();
        show(review);
        if (!finished(review.status)) wait(); // the server has already waited
        return;
      }
    } catch (err) {
      // A dropped connection is tried again below.
    }
    setTimeout(wait, 2000); // an error answers at once: not in a tight loop
  };
  if (!finished(section.dataset.status)) wait();
})();
