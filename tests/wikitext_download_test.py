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
"""Fetching WikiText: verification and extraction, on local archives only.

No test reaches the network: archives are made here, served (where a
download is tested) by a server on 127.0.0.1, and the offline case is a
closed port on 127.0.0.1.
"""

import functools
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import zipfile
from unittest import mock

from absl.testing import absltest
from rmc.data import wikitext
from rmc.data import wikitext_download

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TEXT = {'train': ' = A = \n the cat sat \n', 'valid': ' the dog \n',
         'test': ' \n a mat \n'}


def _make_archive(directory, folder='wikitext-2', splits=('train', 'valid',
                                                           'test'),
                  extra=()):
  """A zip laid out as the published one; returns (path, Archive)."""
  path = os.path.join(directory, 'wikitext-2-v1.zip')
  with zipfile.ZipFile(path, 'w') as z:
    for split in splits:
      z.writestr(f'{folder}/wiki.{split}.tokens', _TEXT[split])
    for name, text in extra:
      z.writestr(name, text)
  with open(path, 'rb') as f:
    md5 = hashlib.md5(f.read()).hexdigest()
  return path, wikitext_download.Archive(name='wikitext-2-v1.zip', md5=md5,
                                         folder='wikitext-2')


def _closed_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]  # Nothing listens once it is closed.


class FetchTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = self.create_tempdir().full_path
    self.archive_path, self.archive = _make_archive(self.tmp)
    patcher = mock.patch.dict(wikitext_download.ARCHIVES,
                              {'wikitext-2': self.archive})
    patcher.start()
    self.addCleanup(patcher.stop)

  def test_published_checksums(self):
    self.assertEqual(wikitext_download.ARCHIVES['wikitext-103'].md5,
                     '9ddaacaf6af0710eda8c456decff7832')
    self.assertEqual(wikitext_download.ARCHIVES['wikitext-103'].name,
                     'wikitext-103-v1.zip')

  def test_local_archive_is_verified_and_extracted(self):
    data_dir = os.path.join(self.tmp, 'data')
    lines = []
    written = wikitext_download.fetch('wikitext-2', data_dir,
                                      archive_path=self.archive_path,
                                      log=lines.append)
    self.assertEqual(sorted(written), ['test', 'train', 'valid'])
    for split, text in _TEXT.items():
      with open(os.path.join(data_dir, f'wiki.{split}.tokens')) as f:
        self.assertEqual(f.read(), text)
    self.assertIn(f'MD5 {self.archive.md5}, as published.', lines[0])
    self.assertTrue(os.path.exists(self.archive_path))  # Never removed.
    self.assertEqual(sorted(os.listdir(data_dir)),
                     ['wiki.test.tokens', 'wiki.train.tokens',
                      'wiki.valid.tokens'])
    # The loader reads what was extracted.
    corpus = wikitext.load(data_dir)
    self.assertEqual(corpus.splits['valid'].size, 3)  # the, dog, <eos>.

  def test_a_changed_archive_fails_its_checksum(self):
    with open(self.archive_path, 'r+b') as f:
      f.seek(40)
      byte = f.read(1)
      f.seek(40)
      f.write(bytes([byte[0] ^ 1]))
    data_dir = os.path.join(self.tmp, 'data')
    with self.assertRaisesRegex(
        wikitext_download.DownloadError,
        f'is not the published wikitext-2-v1.zip: its MD5 is [0-9a-f]{{32}}, '
        f'the published one {self.archive.md5}'):
      wikitext_download.fetch('wikitext-2', data_dir,
                              archive_path=self.archive_path, log=id)
    self.assertFalse(os.path.exists(data_dir))  # Nothing extracted.

  def test_an_archive_without_a_split_or_not_a_zip(self):
    path, archive = _make_archive(self.create_tempdir().full_path,
                                  splits=('train', 'valid'))
    with self.assertRaisesRegex(wikitext_download.DownloadError,
                                'does not hold wikitext-2/wiki.test.tokens'):
      wikitext_download.extract(path, archive, os.path.join(self.tmp, 'a'))
    with open(path, 'wb') as f:
      f.write(b'not a zip')
    with self.assertRaisesRegex(wikitext_download.DownloadError,
                                'is not a readable zip archive'):
      wikitext_download.extract(path, archive, os.path.join(self.tmp, 'b'))

  def test_only_the_splits_are_extracted(self):
    path, archive = _make_archive(
        self.create_tempdir().full_path,
        extra=[('../outside.txt', 'x'), ('/etc/absolute.txt', 'x')])
    data_dir = os.path.join(self.tmp, 'data')
    wikitext_download.extract(path, archive, data_dir)
    self.assertLen(os.listdir(data_dir), 3)
    self.assertFalse(os.path.exists(os.path.join(self.tmp, 'outside.txt')))

  def test_download_from_a_local_server_then_removed(self):
    served = self.create_tempdir().full_path
    os.rename(self.archive_path, os.path.join(served, self.archive.name))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=served)
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    self.addCleanup(server.server_close)
    self.addCleanup(server.shutdown)
    port = server.server_address[1]
    data_dir = os.path.join(self.tmp, 'data')
    lines = []
    # The first mirror is down; the second serves the archive.
    wikitext_download.fetch(
        'wikitext-2', data_dir, log=lines.append,
        mirrors=(f'http://127.0.0.1:{_closed_port()}/{{archive}}',
                 f'http://127.0.0.1:{port}/{{archive}}'), timeout_s=10)
    self.assertRegex(lines[1], 'Cannot download http://127.0.0.1:')
    self.assertEqual(sorted(os.listdir(data_dir)),
                     ['wiki.test.tokens', 'wiki.train.tokens',
                      'wiki.valid.tokens'])  # The archive is removed.

  def test_offline_is_one_clear_line(self):
    data_dir = os.path.join(self.tmp, 'data')
    port = _closed_port()
    with self.assertRaisesRegex(
        wikitext_download.DownloadError,
        r'Cannot download wikitext-2-v1.zip from any of 1 addresses '
        r'\(offline\?\): Cannot download http://127.0.0.1:\d+/wikitext-2-v1'
        r'.zip: .*refused.*Download it on another machine and pass '
        r'--archive=PATH.'):
      wikitext_download.fetch(
          'wikitext-2', data_dir, log=id,
          mirrors=(f'http://127.0.0.1:{port}/{{archive}}',), timeout_s=10)
    self.assertEqual(os.listdir(data_dir), [])  # No partial file left.


class CommandTest(absltest.TestCase):

  def _run(self, *args):
    return subprocess.run(
        [sys.executable, '-m', 'experiments.download_wikitext', *args],
        cwd=_ROOT, capture_output=True, text=True, timeout=120, check=False)

  def test_a_wrong_archive_is_one_line_error(self):
    path, _ = _make_archive(self.create_tempdir().full_path)
    data_dir = self.create_tempdir().full_path
    done = self._run('--dataset=wikitext-2', f'--data_dir={data_dir}',
                     f'--archive={path}')
    self.assertEqual(done.returncode, 1, done.stderr)
    self.assertNotIn('Traceback', done.stderr)
    self.assertRegex(done.stderr.strip().splitlines()[-1],
                     f'^error: {path} is not the published wikitext-2-v1.zip: '
                     'its MD5 is')

  def test_missing_data_dir_and_archive(self):
    done = self._run('--archive=/nonexistent.zip', '--data_dir=/tmp/x')
    self.assertEqual(done.returncode, 1)
    self.assertEqual(done.stderr.strip().splitlines()[-1],
                     'error: --archive=/nonexistent.zip is not a file.')
    done = self._run()
    self.assertIn('--data_dir is required.', done.stderr)


if __name__ == '__main__':
  absltest.main()
