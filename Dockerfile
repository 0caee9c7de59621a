# The PhysioNet/CinC Challenge 2021 layout: the repository in /physionet, run as
#   docker run -v $PWD/data:/physionet/data -v $PWD/model:/physionet/model \
#              -v $PWD/test_data:/physionet/test_data -v $PWD/outputs:/physionet/outputs image \
#     bash -c "python train_model.py data model && python test_model.py model test_data outputs"
#
# torch: requirements.txt pins torch==2.13.0. From PyPI on Linux x86-64 that version is the build
# that bundles the CUDA libraries (several GB), which runs on the CPU too and on an NVIDIA GPU when
# the container is started with `--gpus all` (NVIDIA Container Toolkit on the host). For a small
# CPU-only image, install the CPU build first (build with --build-arg TORCH_INDEX=cpu); for a
# specific CUDA version name its index (e.g. TORCH_INDEX=cu126, as listed by the PyTorch project).
FROM python:3.11-slim

ARG TORCH_INDEX=""
WORKDIR /physionet

# Dependencies first, so code edits do not reinstall them.
COPY requirements.txt /physionet/requirements.txt
RUN if [ -n "$TORCH_INDEX" ]; then \
        pip install --no-cache-dir torch==2.13.0 --index-url "https://download.pytorch.org/whl/$TORCH_INDEX"; \
    fi && \
    grep -v '^-e ' requirements.txt > /tmp/requirements-deps.txt && \
    pip install --no-cache-dir -r /tmp/requirements-deps.txt

COPY . /physionet
# The package itself (editable, so the Challenge scripts and `python -m` modules import it from here).
RUN pip install --no-cache-dir --no-deps -e .
