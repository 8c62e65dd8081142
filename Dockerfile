# One image for every service (web, worker, beat, trainer, migrate); they differ in `command:`.
# The default TensorFlow is the CPU build; the GPU worker's image is built with
#   --build-arg TENSORFLOW="tensorflow[and-cuda]"
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# The dependencies first, in a layer of their own (the project's packages are not copied yet,
# so it installs none of its own), which a change to the source leaves cached.
COPY pyproject.toml ./
ARG TENSORFLOW=""
RUN pip install ".[all]" && pip uninstall -y sentiment-service \
 && if [ -n "$TENSORFLOW" ]; then pip uninstall -y tensorflow-cpu && pip install "$TENSORFLOW"; fi

COPY sentiment_core sentiment_core
COPY sentiment_inference sentiment_inference
COPY web web
COPY worker worker
COPY trainer trainer
COPY sentiment_cli sentiment_cli
COPY migrations migrations
RUN pip install --no-deps .

RUN useradd --create-home --uid 1000 sentiment \
 && mkdir -p /models /var/lib/sentiment \
 && chown sentiment /models /var/lib/sentiment
USER sentiment
ENV SENTIMENT_VAR=/var/lib/sentiment MODEL_DIR=/models PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
EXPOSE 8000
CMD ["sentiment", "--help"]
