# The PhysioNet/CinC Challenge 2021 layout: the repository in /physionet, run as
#   docker run -v $PWD/data:/physionet/data -v $PWD/model:/physionet/model \
#              -v $PWD/test_data:/physionet/test_data -v $PWD/outputs:/physionet/outputs image \
#     bash -c "python train_model.py data model && python test_model.py model test_data outputs"
#
# requirements.txt pins the CPU build of torch. For a CUDA build, add a line after the
# requirements step that installs the same torch version from the PyTorch wheel index of your
# CUDA version (the index names, cuXYZ, are listed on https://pytorch.org/get-started/locally/):
#   RUN pip install --no-cache-dir --force-reinstall torch==<version in requirements.txt> \
#       --index-url https://download.pytorch.org/whl/cuXYZ
# and run the container with `--gpus all` (NVIDIA Container Toolkit on the host).
FROM python:3.11-slim

WORKDIR /physionet

# Dependencies first, so code edits do not reinstall them.
COPY requirements.txt /physionet/requirements.txt
RUN pip install --no-cache-dir -r requirements.txt

COPY . /physionet
