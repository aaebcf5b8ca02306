#!/bin/sh
# Drop from /opt/venv what the trainer never uses at run time. Bind-mounted by the Dockerfiles
# and run in the same RUN as the install it follows, so the bytes really leave the image.
# Kept on purpose: __pycache__ (the venv is read-only for the running user, so without the
# compiled files every start would recompile ray and torch: seconds lost per container).
set -eu
cd "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# Test suites of third-party packages (pandas, scipy, numpy, sympy, pyarrow, matplotlib, ...),
# which nothing imports outside their own test runs. Ray and TensorFlow/Keras stay whole.
find . -mindepth 2 \( -path ./ray -o -path ./tensorflow -o -path ./keras -o -path ./tf_keras \) -prune \
  -o -type d -name tests -prune -exec rm -rf {} +
# torch: C++ test executables and the C++ headers (only for compiling extensions; the image
# has no compiler). torch_shm_manager and protoc in torch/bin stay.
if [ -d torch ]; then
  rm -rf torch/test torch/include torch/bin/test_* torch/bin/*Test
fi
rm -rf pyarrow/include
