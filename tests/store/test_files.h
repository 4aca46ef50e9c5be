// Small file helpers shared by the store and snapshot tests.
#pragma once

#include <QByteArray>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>

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


}  // namespace smx_test
