# The hub as one image; the same image runs the API and the delivery workers (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
COPY mappings ./mappings
COPY xsd ./xsd
COPY un_cefact ./un_cefact
COPY config ./config
# Editable: the hub reads mappings/, xsd/, un_cefact/ and config/ beside its package.
RUN pip install --no-cache-dir -e .
ENV HUB_CERTS_DIR=/app/certs/dev
ENTRYPOINT ["hub"]
EXPOSE 8000
CMD ["serve", "--host", "0.0.0.0"]
