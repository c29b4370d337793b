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
r"""Downloads, verifies and extracts WikiText-103 or WikiText-2.

Usage:

  python -m experiments.download_wikitext --dataset=wikitext-103 \
      --data_dir=$HOME/data/wikitext-103
  python -m experiments.wikitext103 --data_dir=$HOME/data/wikitext-103 \
      --preset=paper --workdir=/tmp/wt103

The archive (``wikitext-103-v1.zip`` or ``wikitext-2-v1.zip``) is
downloaded from its published location, its MD5 checked against the
published one, and ``wiki.{train,valid,test}.tokens`` extracted into
``--data_dir``. Offline, download the archive on another machine and pass
``--archive=PATH``: it is verified and extracted the same way. See
:mod:`rmc.data.wikitext_download`.
"""

from absl import app
from absl import flags

from experiments import cli
from rmc.data import wikitext_download

_DATASET = flags.DEFINE_enum(
    'dataset',
    'wikitext-103',
    sorted(wikitext_download.ARCHIVES),
    'Which WikiText to fetch.',
)
_DATA_DIR = flags.DEFINE_string(
    'data_dir',
    None,
    'Directory to extract wiki.{train,valid,test}.tokens '
    'into (created); the --data_dir of experiments.wikitext103.',
)
_ARCHIVE = flags.DEFINE_string(
    'archive',
    None,
    'A local copy of the archive, verified and extracted '
    'instead of downloading one.',
)
_KEEP_ARCHIVE = flags.DEFINE_bool(
    'keep_archive', False, 'Keep the downloaded archive in --data_dir.'
)
_TIMEOUT_S = flags.DEFINE_float(
    'timeout_s', 60.0, 'Seconds to wait for the server at each read.'
)


def main(argv):
  """The command-line entry point; see the module docstring."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}.')
  if not _DATA_DIR.value:
    raise app.UsageError('--data_dir is required.')
  written = wikitext_download.fetch(
      _DATASET.value,
      _DATA_DIR.value,
      archive_path=_ARCHIVE.value,
      keep_archive=_KEEP_ARCHIVE.value,
      timeout_s=_TIMEOUT_S.value,
  )
  print(
      f'{_DATASET.value} is ready in {_DATA_DIR.value} '
      f'({", ".join(sorted(written))}): pass --data_dir={_DATA_DIR.value} '
      'to experiments.wikitext103.'
  )


if __name__ == '__main__':
  cli.run(main)
