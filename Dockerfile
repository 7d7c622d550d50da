# Toponimo web service: the committed weights served by uvicorn on port 8000.
#   docker build -t toponimo .
#   docker run --rm -p 8000:8000 toponimo                       # one worker
#   docker run --rm -p 8000:8000 -e WEB_CONCURRENCY=2 toponimo  # one worker per core
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEB_CONCURRENCY=1

WORKDIR /srv/toponimo

# runtime dependencies only, read from pyproject.toml so the list lives in one place
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
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
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
