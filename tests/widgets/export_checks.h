// What the views' export tests check of a written file: its bytes, and that
// an SVG or PDF stays vector all through (no embedded raster image).
#pragma once

#include <QByteArray>
#include <QFile>
#include <QString>

namespace smx_test {

/// The file's bytes; empty when it cannot be read.
inline QByteArray read_bytes(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

/// Whether the bytes of an SVG or a PDF embed a raster image.
inline bool embeds_raster(const QByteArray& bytes) {
  return bytes.contains("<image") || bytes.contains("/Subtype /Image");
}

}  // namespace smx_test
