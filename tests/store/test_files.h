// Small file helpers shared by the store and snapshot tests.
#pragma once

#include <QByteArray>
#include <QCryptographicHash>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <map>
#include <string>

namespace smx_test {
namespace fs = std::filesystem;

inline fs::path in(const QTemporaryDir& dir, const char* name) { return fs::path(dir.path().toStdString()) / name; }

inline QByteArray file_bytes(const fs::path& p) {
  QFile f(QString::fromStdString(p.string()));
  if (!f.open(QIODevice::ReadOnly)) return QByteArray("<unreadable>");
  return f.readAll();
}

inline void write_bytes(const fs::path& p, const QByteArray& bytes) {
  QFile f(QString::fromStdString(p.string()));
  QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
  QCOMPARE(f.write(bytes), bytes.size());
}

/// Every entry under `root` (not following links): relative path -> "dir",
/// "link -> target" or "file <sha256 of the bytes>". Equal fingerprints: the
/// tree is byte-identical.
inline std::map<std::string, std::string> tree_fingerprint(const fs::path& root) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const fs::path p = it->path();
    const std::string key = p.lexically_relative(root).string();
    const auto st = fs::symlink_status(p);
    if (fs::is_symlink(st))
      out[key] = "link -> " + fs::read_symlink(p).string();
    else if (fs::is_directory(st))
      out[key] = "dir";
    else
      out[key] = "file " + QCryptographicHash::hash(file_bytes(p), QCryptographicHash::Sha256).toHex().toStdString();
  }
  if (ec) out["<error>"] = ec.message();
  return out;
}

}  // namespace smx_test
