# netpol-pdp container image: `netpol-pdp serve --kube` as a non-root user.
#
#   docker build -t netpol-pdp:0.1.0 .
#
# Stage 1 installs the project exactly as the README does (`pip install .`) into
# a virtual environment, with a compiler at hand for the C extensions
# (pytricia); stage 2 copies only that environment onto the slim base, so the
# image has no compiler, no pip cache and no sources.

FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/netpol-pdp
ENV PATH=/opt/netpol-pdp/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proto/ proto/
COPY index/ index/
COPY server/ server/
COPY clients/ clients/
COPY bench/ bench/
COPY examples/ examples/
RUN pip install --no-cache-dir .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 netpol \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin netpol
COPY --from=build /opt/netpol-pdp /opt/netpol-pdp
ENV PATH=/opt/netpol-pdp/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 50051 9090
ENTRYPOINT ["netpol-pdp"]
CMD ["serve", "--kube", "--listen", "0.0.0.0:50051", "--insecure"]
