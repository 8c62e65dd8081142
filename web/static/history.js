// A submission's history page: follows the submission's event stream, filling in each review's
// row as a worker finishes it. The server ends the stream after the last review; if it ends while
// a row shown still waits, the connection dropped, and the page is loaded again.
(function () {
  const table = document.getElementById("reviews");
  const waiting = () =>
    [...table.tBodies[0].rows].some((row) => ["queued", "scoring"].includes(row.cells[2].dataset.status));
  const show = (review) => {
    const row = document.getElementById(`review-${review.id}`);
    if (!row) return; // on another page of the history
    const [, , status, sentiment, score, model] = row.cells;
    status.dataset.status = review.status;
    status.textContent = review.status;
    if (review.error) {
      const error = document.createElement("span");
      error.className = "error";
      error.textContent = `(${review.error})`;
      status.append(" ", error);
    }
    sentiment.textContent = review.sentiment || "";
    score.textContent = review.score === null ? "" : review.score.toFixed(3);
    model.textContent = review.model_version || "";
  };
  const source = new EventSource(table.dataset.events);
  source.onmessage = (event) => show(JSON.parse(event.data));
  source.onerror = () => {
    source.close(); // EventSource would open it again, and be sent every review again
    if (waiting()) setTimeout(() => location.reload(), 2000);
  };
})();
