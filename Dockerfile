# imagestream-trigger operator image, for OpenShift (crc included).
#   podman build -t imagestream-trigger:0.1.0 .
# Red Hat UBI 9 bases are pulled without credentials. The image holds the built
# wheel and its locked dependencies only; it runs as any UID in group 0
# (OpenShift's restricted-v2 SCC) and writes nothing outside /tmp.

ARG PYTHON_IMAGE=registry.access.redhat.com/ubi9/python-311:1
ARG RUNTIME_IMAGE=registry.access.redhat.com/ubi9/ubi-minimal:9.6

# 1. Build our wheel from the source tree.
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /opt/app-root/src
COPY --chown=1001:0 pyproject.toml README.md ./
COPY --chown=1001:0 operator/ operator/
RUN python3.11 -m pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/dist .

# 2. Install it, with exactly the locked dependencies, into /opt/imagestream-trigger.
FROM ${PYTHON_IMAGE} AS install
# Root only to write /opt in this build stage; the final stage runs as 1001.
# hadolint ignore=DL3002
USER 0
ENV PIP_NO_CACHE_DIR=1
COPY requirements.lock packaging/install.sh /tmp/build/
COPY --from=wheel /tmp/dist/ /tmp/build/dist/
RUN /tmp/build/install.sh /opt/imagestream-trigger /tmp/build/requirements.lock /tmp/build/dist

# 3. The runtime: a minimal UBI with Python 3.11 and the installed environment.
FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="imagestream-trigger" \
      org.opencontainers.image.description="Rolls out workloads and starts builds when an OpenShift ImageStream tag moves" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/imagestream-trigger/imagestream-trigger" \
      org.opencontainers.image.vendor="imagestream-trigger" \
      io.k8s.display-name="imagestream-trigger" \
      io.openshift.tags="operator,imagestream,triggers"
# python3.11 follows the RHEL 9 stream; its errata come with the base image.
# hadolint ignore=DL3041
RUN microdnf install -y --nodocs --setopt=install_weak_deps=0 python3.11 \
    && microdnf clean all
COPY --from=install /opt/imagestream-trigger /opt/imagestream-trigger
ENV PATH=/opt/imagestream-trigger/bin:/usr/bin:/bin \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
USER 1001:0
EXPOSE 8080 8081
ENTRYPOINT ["imagestream-trigger", "run"]
