# The hub as one image: the same image runs every service of docker-compose.yml (the PKI step, the migration, the
# API, the delivery workers and the counterpart sandboxes), each with its own `hub …` command.
#
# What a running hub reads beside its package (hub.standards.PROJECT_ROOT, /app here): mappings/, xsd/, un_cefact/
# and config/. The real standards artefacts (../shared/standards) are read by the tests only, never at run time, and
# are not in the image; neither are the tests, the benchmarks, certs/dev (made at start by the `pki` service) or var/.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUB_CERTS_DIR=/app/certs/dev
WORKDIR /app

# The package first, then the data: changing a mapping or a code list does not reinstall the dependencies.
# Editable, so that PROJECT_ROOT is /app and the hub finds the data folders copied below.
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
RUN pip install --no-cache-dir -e .
COPY mappings ./mappings
COPY xsd ./xsd
COPY un_cefact ./un_cefact
COPY config ./config

# The facsimile (GET /v1/documents/{id}/pdf) is drawn in DejaVu, a Unicode font the slim image lacks.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core && rm -rf /var/lib/apt/lists/*

# An unprivileged user owns the folders that compose mounts volumes on (a new named volume takes the owner of the
# folder it is mounted on): certs/dev (the development PKI), var/ and keys/ (the API key the `apikey` service makes).
RUN useradd --system --uid 10001 --home-dir /app hub \
    && mkdir -p /app/certs/dev /app/var /app/keys \
    && chown hub:hub /app/certs/dev /app/var /app/keys
USER hub

ENTRYPOINT ["hub"]
EXPOSE 8000 8443 8444 8445 8446 8447 8448 8449
CMD ["serve", "--host", "0.0.0.0"]
