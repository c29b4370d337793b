# Copyright 2026 The rmc Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Installs rmc: `pip install .`, or `pip install -e '.[test]'` to develop."""

import pathlib

import setuptools

_ROOT = pathlib.Path(__file__).parent


def _requirements() -> list[str]:
  """Reads requirements.txt, skipping comments and blank lines."""
  lines = (_ROOT / 'requirements.txt').read_text().splitlines()
  return [l.strip() for l in lines if l.strip() and not l.startswith('#')]


def _version() -> str:
  """Reads __version__ from rmc/__init__.py without importing rmc."""
  for line in (_ROOT / 'rmc' / '__init__.py').read_text().splitlines():
    if line.startswith('__version__'):
      return line.split('=')[1].strip().strip("'")
  raise RuntimeError('rmc/__init__.py has no __version__.')


setuptools.setup(
    name='rmc',
    version=_version(),
    description=('Relational Memory Core (Santoro et al., 2018) in JAX and '
                 'Haiku, with the paper\'s experiments.'),
    long_description=(_ROOT / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    license='Apache 2.0',
    packages=setuptools.find_packages(include=['rmc', 'rmc.*']),
    python_requires='>=3.11',
    install_requires=_requirements(),
    extras_require={
        'test': ['pytest>=8', 'pytest-xdist>=3', 'matplotlib>=3.8',
                 'tensorboardX>=2.6'],
        'plot': ['matplotlib>=3.8'],
        # --tensorboard: TensorBoard event files (adds only protobuf).
        'tensorboard': ['tensorboardX>=2.6'],
    },
    classifiers=[
        'License :: OSI Approved :: Apache Software License',
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
