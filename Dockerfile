# Toponimo web service: the committed weights served by uvicorn on port 8000.
#   docker build -t toponimo .
#   docker run --rm -p 8000:8000 toponimo                       # one worker
#   docker run --rm -p 8000:8000 -e WEB_CONCURRENCY=2 toponimo  # one worker per core
# The base image is pinned to an exact Python release and Debian version, and the packages come
# from the same uv.lock (hashes checked) as the README's commands and CI.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    WEB_CONCURRENCY=1

WORKDIR /srv/toponimo

# runtime dependencies only, exactly as locked; the project itself is not installed: uvicorn
# imports app/ from the working directory, beside the models/, data/, templates/ and static/ it reads
COPY requirements-uv.txt pyproject.toml uv.lock ./
RUN pip install -r requirements-uv.txt \
    && uv sync --locked --no-dev --no-install-project \
    && pip uninstall -y uv \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin toponimo

COPY app ./app
COPY models ./models
COPY templates ./templates
COPY static ./static
COPY data ./data

USER toponimo
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3).status != 200)"]

# uvicorn takes its worker count from $WEB_CONCURRENCY; the app is stateless, so scale out with
# more workers (one per core) or more containers behind a load balancer
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--timeout-graceful-shutdown", "3"]
