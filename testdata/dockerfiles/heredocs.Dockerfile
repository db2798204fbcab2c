# syntax=docker/dockerfile:1
FROM debian:bookworm-slim
RUN <<EOT bash
  set -eux
  apt-get update
  apt-get install -y --no-install-recommends jq
EOT
COPY <<-EOF /etc/app/config.ini
	[app]
	name = demo
	EOF
RUN <<'A' && <<B
echo "$not_expanded"
A
echo second
B
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/tool.tar.gz /opt/
ONBUILD COPY . /app/src
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN curl -fsSL https://example.com | tee /tmp/x | wc -l
