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
"""Fetches, verifies and extracts the published WikiText archives.

WikiText-103 and WikiText-2 (Merity et al., 2016; CC BY-SA 3.0) are
published as ``wikitext-103-v1.zip`` and ``wikitext-2-v1.zip``. The original
location (``s3.amazonaws.com/research.metamind.io/wikitext/``) no longer
serves them; the first author's mirror (``wikitext.smerity.com``) serves the
same files. Each archive's MD5 is the one recorded for it since its
publication (e.g. by torchtext), so a download from any mirror, or an
archive obtained by hand, is checked against it.

:func:`fetch` downloads an archive (or takes a local one), checks its MD5,
and extracts ``wiki.{train,valid,test}.tokens`` into a data directory, each
file atomically: an interrupted fetch leaves either no file or a complete
one, and rerunning it finishes the job. The command line is
``python -m experiments.download_wikitext``.
"""

import dataclasses
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence

from rmc.data import wikitext
from rmc.version import __version__

SPLITS = ('train', 'valid', 'test')
# Tried in order; '{archive}' is the archive's file name.
MIRRORS = (
    'https://wikitext.smerity.com/{archive}',
    'https://s3.amazonaws.com/research.metamind.io/wikitext/{archive}',
)
_CHUNK = 1 << 20  # Bytes read or written at a time.


class DownloadError(wikitext.DataError):
  """An archive that cannot be downloaded, verified or extracted."""


@dataclasses.dataclass(frozen=True)
class Archive:
  """A published WikiText archive.

  Attributes:
    name: Its file name, e.g. ``wikitext-103-v1.zip``.
    md5: Its published MD5 checksum (hex).
    folder: The folder inside it that holds the splits.
  """

  name: str
  md5: str
  folder: str

  def member(self, split: str) -> str:
    """The path inside the archive of ``split``'s text."""
    return f'{self.folder}/wiki.{split}.tokens'


ARCHIVES = {
    'wikitext-103': Archive(
        name='wikitext-103-v1.zip',
        md5='9ddaacaf6af0710eda8c456decff7832',
        folder='wikitext-103',
    ),
    'wikitext-2': Archive(
        name='wikitext-2-v1.zip',
        md5='542ccefacc6c27f945fb54453812b3cd',
        folder='wikitext-2',
    ),
}


def md5_of(path: str) -> str:
  """The MD5 (hex) of the file at ``path``."""
  digest = hashlib.md5(usedforsecurity=False)
  with open(path, 'rb') as f:
    while block := f.read(_CHUNK):
      digest.update(block)
  return digest.hexdigest()


def verify(path: str, archive: Archive) -> None:
  """Checks that ``path`` is ``archive`` by its MD5.

  Raises:
    DownloadError: If it is not, naming both checksums.
  """
  actual = md5_of(path)
  if actual != archive.md5:
    raise DownloadError(
        f'{path} is not the published {archive.name}: its MD5 is {actual}, '
        f'the published one {archive.md5}. Delete it and fetch again (a '
        'download cut short or altered on the way), or obtain the archive '
        'from another copy.'
    )


def download(
    url: str,
    path: str,
    timeout_s: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> None:
  """Downloads ``url`` to ``path`` (atomically: ``path`` appears complete).

  Args:
    url: An ``http(s)://`` or ``file://`` address.
    path: The file to write.
    timeout_s: Seconds to wait for the server at each read.
    progress: Called with (bytes so far, total bytes or None) per block.

  Raises:
    DownloadError: If the address cannot be read (offline, refused, not
      found), naming it and why.
  """
  # The mirror refuses Python's default User-Agent.
  request = urllib.request.Request(
      url, headers={'User-Agent': f'rmc/{__version__} (python urllib)'}
  )
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, partial = tempfile.mkstemp(dir=directory, prefix='.tmp-download-')
  try:
    with os.fdopen(fd, 'wb') as f:
      try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
          length = response.headers.get('Content-Length')
          total = int(length) if length else None
          done = 0
          while block := response.read(_CHUNK):
            f.write(block)
            done += len(block)
            if progress is not None:
              progress(done, total)
      except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, 'reason', None) or e
        raise DownloadError(f'Cannot download {url}: {reason}.') from e
    os.replace(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)


def extract(path: str, archive: Archive, data_dir: str) -> dict[str, str]:
  """Extracts the splits of ``archive`` (at ``path``) into ``data_dir``.

  Only the three ``wiki.*.tokens`` members are read, by their known names,
  so nothing in the archive can write outside ``data_dir``. Each file is
  written to a temporary name and renamed when complete.

  Returns:
    ``{split: path of its text}``.

  Raises:
    DownloadError: If the archive is not a zip file or lacks a split.
  """
  os.makedirs(data_dir, exist_ok=True)
  written = {}
  try:
    with zipfile.ZipFile(path) as z:
      names = set(z.namelist())
      missing = [
          archive.member(s) for s in SPLITS if archive.member(s) not in names
      ]
      if missing:
        raise DownloadError(
            f'{path} does not hold {", ".join(missing)}: it '
            f'is not {archive.name}.'
        )
      for split in SPLITS:
        target = os.path.join(data_dir, f'wiki.{split}.tokens')
        fd, partial = tempfile.mkstemp(dir=data_dir, prefix='.tmp-extract-')
        try:
          with (
              z.open(archive.member(split)) as source,
              os.fdopen(fd, 'wb') as sink,
          ):
            shutil.copyfileobj(source, sink, _CHUNK)
          os.replace(partial, target)
        finally:
          if os.path.exists(partial):
            os.remove(partial)
        written[split] = target
  except (zipfile.BadZipFile, EOFError) as e:
    raise DownloadError(f'{path} is not a readable zip archive: {e}.') from e
  return written


def fetch(
    dataset: str,
    data_dir: str,
    archive_path: str | None = None,
    mirrors: Sequence[str] = MIRRORS,
    keep_archive: bool = False,
    timeout_s: float = 60.0,
    log: Callable[[str], None] = print,
) -> dict[str, str]:
  """Downloads (or takes), verifies and extracts one WikiText dataset.

  Args:
    dataset: A key of :data:`ARCHIVES`: ``wikitext-103`` or ``wikitext-2``.
    data_dir: Where ``wiki.{train,valid,test}.tokens`` go (created).
    archive_path: A local copy of the archive, used instead of downloading.
    mirrors: Address templates tried in order (``{archive}`` is the name).
    keep_archive: Keep the downloaded archive in ``data_dir`` (a local
      ``archive_path`` is never removed).
    timeout_s: Seconds to wait for a server at each read.
    log: Where progress lines go.

  Returns:
    ``{split: path of its text}``.

  Raises:
    DownloadError: For an unknown dataset, a download that fails from every
      mirror, a checksum that does not match, or an unreadable archive.
  """
  if dataset not in ARCHIVES:
    raise DownloadError(
        f'Unknown dataset {dataset!r}; known: '
        f'{", ".join(sorted(ARCHIVES))}.'
    )
  archive = ARCHIVES[dataset]
  if archive_path is not None:
    if not os.path.isfile(archive_path):
      raise DownloadError(f'--archive={archive_path} is not a file.')
    path = archive_path
  else:
    path = os.path.join(data_dir, archive.name)
    if not (os.path.isfile(path) and md5_of(path) == archive.md5):
      failures = []
      for mirror in mirrors:
        url = mirror.format(archive=archive.name)
        log(f'Downloading {url} ...')
        try:
          download(url, path, timeout_s=timeout_s)
          break
        except DownloadError as e:
          log(str(e))
          failures.append(str(e))
      else:
        raise DownloadError(
            f'Cannot download {archive.name} from any of {len(mirrors)} '
            f'addresses (offline?): {" ".join(failures)} Download it on '
            'another machine and pass --archive=PATH.'
        )
  verify(path, archive)
  log(f'{path}: MD5 {archive.md5}, as published.')
  written = extract(path, archive, data_dir)
  for target in written.values():
    log(f'{target}: {os.path.getsize(target):,} bytes.')
  if archive_path is None and not keep_archive:
    os.remove(path)
  return written
