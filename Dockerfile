# kgclip on a CUDA machine: the three CLIs with FAISS on the GPU.
#   docker build -t kgclip .
#   docker run --gpus all -v $PWD/data:/data kgclip clusterbuild shard /data/kg --out /data/shards --device cuda
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    NLTK_DATA=/usr/share/nltk_data

# Distribution packages follow the base image's release; pinning them breaks on every point update.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip python3-venv python3-dev gcc libc6-dev wordnet-base wordnet-sense-index \
 && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/kgclip
ENV PATH=/opt/kgclip/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY kgclip ./kgclip
COPY kgaug ./kgaug
COPY clusterbuild ./clusterbuild
COPY train ./train
COPY tests/assets ./tests/assets

# The `gpu` extra selects faiss-gpu instead of faiss-cpu; versions come from pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --upgrade pip \
 && pip install ".[gpu]" \
 && bash tests/assets/install_wordnet.sh "$NLTK_DATA"

WORKDIR /work
CMD ["bash", "-c", "kgaug --help && clusterbuild --help && train --help"]
