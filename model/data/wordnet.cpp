// WordNet 3.0 data-file parser (format: wndb(5WN)); one pass over each file read whole.
#include "model/data/wordnet.h"

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <string_view>

namespace smx::data {
namespace fs = std::filesystem;

namespace {

struct DataFile {
  const char* name;
  char pos;  // ss_type expected in the file ('a' also admits 's')
};
constexpr DataFile kDataFiles[] = {{"data.noun", 'n'}, {"data.verb", 'v'}, {"data.adj", 'a'}, {"data.adv", 'r'}};

std::string read_whole_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open WordNet file " + path.string());
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  std::string text(static_cast<size_t>(size), '\0');
  if (size > 0 && !in.read(text.data(), size)) throw DataError("cannot read WordNet file " + path.string());
  return text;
}

std::string_view trim(std::string_view s, std::string_view chars = " \t\r\n") {
  const size_t b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(chars) - b + 1);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// Walks one data line token by token; every failure names file, line and what was expected.
class LineParser {
 public:
  LineParser(std::string_view line, const fs::path& file, size_t line_no)
      : line_(line), file_(file), line_no_(line_no) {}

  std::string_view token(const char* what) {
    while (pos_ < line_.size() && line_[pos_] == ' ') ++pos_;
    const size_t begin = pos_;
    while (pos_ < line_.size() && line_[pos_] != ' ') ++pos_;
    if (begin == pos_) fail(std::string("expected ") + what + ", got the end of the line");
    return line_.substr(begin, pos_ - begin);
  }

  template <typename T>
  T number(const char* what, int base) {
    const std::string_view tok = token(what);
    T value{};
    const auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), value, base);
    if (ec != std::errc() || end != tok.data() + tok.size())
      fail(std::string("expected ") + what + ", got '" + std::string(tok) + "'");
    return value;
  }

  /// Everything after the current token, surrounding whitespace removed.
  std::string_view rest() const { return trim(line_.substr(pos_)); }

  [[noreturn]] void fail(const std::string& message) const {
    throw DataError(file_.string() + ":" + std::to_string(line_no_) + ": malformed WordNet data line: " + message);
  }

 private:
  std::string_view line_;
  const fs::path& file_;
  size_t line_no_;
  size_t pos_ = 0;
};

/// "ready_to_hand(p)" -> "ready to hand". Adjective markers: (a) attributive, (p) predicative,
/// (ip) immediately postnominal.
std::string word_text(std::string_view w) {
  for (std::string_view marker : {"(a)", "(p)", "(ip)"})
    if (ends_with(w, marker)) {
      w.remove_suffix(marker.size());
      break;
    }
  std::string s(w);
  for (char& c : s)
    if (c == '_') c = ' ';
  return s;
}

bool has_alnum(std::string_view s) {
  for (char c : s)
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return false;
}

/// True when a double quote after `before` (the gloss so far) opens the examples: it follows the
/// gloss's start, a ';', ':', ',' or ')', or an "e.g." (spaces between do not count).
bool opens_examples(std::string_view before) {
  before = trim(before, " ");
  if (before.empty()) return true;
  const char last = before.back();
  return last == ';' || last == ':' || last == ',' || last == ')' || ends_with(before, "e.g.");
}

/// Splits a gloss "definition; \"example one\"; \"example two\"" into its parts.
/// The examples start at the first double quote that opens them (see opens_examples) outside any
/// parentheses; quotes before that are part of the definition ("in the phrase \"make strides\"").
/// From there every double-quoted span is an example and what lies between them (separators,
/// "- Author" attributions) is dropped; a lead-in "e.g." or "as in" is cut from the definition.
/// A handful of WordNet glosses have unbalanced quotes: an unterminated example runs to the end.
void split_gloss(std::string_view gloss, std::string& definition, std::vector<std::string>& examples) {
  size_t start = std::string_view::npos;
  bool in_quote = false;
  int depth = 0;  // parentheses
  for (size_t i = 0; i < gloss.size() && start == std::string_view::npos; ++i) {
    const char c = gloss[i];
    if (c == '"') {
      if (!in_quote && depth == 0 && opens_examples(gloss.substr(0, i)))
        start = i;
      else
        in_quote = !in_quote;
    } else if (!in_quote && c == '(') {
      ++depth;
    } else if (!in_quote && c == ')' && depth > 0) {
      --depth;
    }
  }
  std::string_view def = trim(gloss.substr(0, start), " ;:,\t\r\n");
  if (start != std::string_view::npos) {
    for (std::string_view lead_in : {"e.g.", "as in"})
      if (ends_with(def, lead_in) && (def.size() == lead_in.size() || def[def.size() - lead_in.size() - 1] == ' ' ||
                                      def[def.size() - lead_in.size() - 1] == ';')) {
        def = trim(def.substr(0, def.size() - lead_in.size()), " ;:,\t\r\n");
      }
  }
  definition = std::string(def);
  if (start == std::string_view::npos) return;
  for (size_t i = start; i < gloss.size();) {
    const size_t open = gloss.find('"', i);
    if (open == std::string_view::npos) break;
    size_t close = gloss.find('"', open + 1);
    if (close == std::string_view::npos) close = gloss.size();
    const std::string_view example = trim(gloss.substr(open + 1, close - open - 1), " ;\t\r\n");
    if (has_alnum(example)) examples.emplace_back(example);
    i = close + 1;
  }
}

Synset parse_line(std::string_view line, const fs::path& file, size_t line_no, char file_pos) {
  LineParser p(line, file, line_no);
  Synset s;
  s.offset = p.number<uint32_t>("the synset offset (8 decimal digits)", 10);
  s.lex_filenum = p.number<int>("the lexicographer file number (2 decimal digits)", 10);
  if (s.lex_filenum < 0 || s.lex_filenum >= static_cast<int>(lexicographer_files().size()))
    p.fail("lexicographer file number " + std::to_string(s.lex_filenum) + " is not in [0, " +
           std::to_string(lexicographer_files().size()) + ")");
  const std::string_view type = p.token("the synset type (n, v, a, s or r)");
  const bool type_ok = type.size() == 1 && (type[0] == file_pos || (file_pos == 'a' && type[0] == 's'));
  if (!type_ok)
    p.fail("synset type '" + std::string(type) + "' does not belong in a file of part of speech '" + file_pos + "'");
  s.pos = type[0];

  const unsigned words = p.number<unsigned>("the word count (2 hex digits)", 16);
  if (words == 0) p.fail("word count is 0");
  s.words.reserve(words);
  for (unsigned w = 0; w < words; ++w) {
    s.words.push_back(word_text(p.token("a word")));
    p.number<unsigned>("the word's lex_id (1 hex digit)", 16);
  }

  const unsigned pointers = p.number<unsigned>("the pointer count (3 decimal digits)", 10);
  for (unsigned k = 0; k < pointers; ++k) {
    p.token("a pointer symbol");
    p.number<uint32_t>("the pointer's synset offset", 10);
    const std::string_view pos = p.token("the pointer's part of speech");
    if (pos.size() != 1 || std::string_view("nvasr").find(pos[0]) == std::string_view::npos)
      p.fail("pointer part of speech '" + std::string(pos) + "' is not one of n, v, a, s, r");
    p.number<unsigned>("the pointer's source/target (4 hex digits)", 16);
  }

  if (s.pos == 'v') {
    const unsigned frames = p.number<unsigned>("the verb frame count (2 decimal digits)", 10);
    for (unsigned k = 0; k < frames; ++k) {
      if (p.token("'+' before a verb frame") != "+") p.fail("expected '+' before verb frame " + std::to_string(k + 1));
      p.number<unsigned>("the frame number", 10);
      p.number<unsigned>("the frame's word number (2 hex digits)", 16);
    }
  }

  if (p.token("'|' before the gloss") != "|") p.fail("expected '|' before the gloss");
  split_gloss(p.rest(), s.definition, s.examples);
  return s;
}

}  // namespace

fs::path default_wordnet_dir() {
  const char* env = std::getenv("SMX_WORDNET_DIR");
  if (env && *env) return fs::path(env);
  return fs::path("/usr/share/wordnet");
}

std::vector<Synset> read_wordnet(const fs::path& dir) {
  std::vector<Synset> synsets;
  synsets.reserve(120000);
  for (const DataFile& df : kDataFiles) {
    const fs::path path = dir / df.name;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
      throw DataError("WordNet file " + path.string() +
                      " not found (install the Debian package wordnet-base, or set SMX_WORDNET_DIR to a folder "
                      "holding data.noun, data.verb, data.adj and data.adv)");
    const std::string text = read_whole_file(path);
    const std::string_view all(text);
    size_t line_no = 0;
    for (size_t pos = 0; pos < all.size();) {
      size_t end = all.find('\n', pos);
      if (end == std::string_view::npos) end = all.size();
      const std::string_view line = all.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      // License header lines start with two spaces; a blank line (the end of the file) carries nothing.
      if (line.size() >= 2 && line[0] == ' ' && line[1] == ' ') continue;
      if (trim(line).empty()) continue;
      synsets.push_back(parse_line(line, path, line_no, df.pos));
    }
  }
  return synsets;
}

const std::vector<std::string>& lexicographer_files() {
  // WordNet 3.0 lexnames(5WN), in file-number order.
  static const std::vector<std::string> names = {
      "adj.all",           "adj.pert",         "adv.all",          "noun.Tops",           "noun.act",
      "noun.animal",       "noun.artifact",    "noun.attribute",   "noun.body",           "noun.cognition",
      "noun.communication", "noun.event",      "noun.feeling",     "noun.food",           "noun.group",
      "noun.location",     "noun.motive",      "noun.object",      "noun.person",         "noun.phenomenon",
      "noun.plant",        "noun.possession",  "noun.process",     "noun.quantity",       "noun.relation",
      "noun.shape",        "noun.state",       "noun.substance",   "noun.time",           "verb.body",
      "verb.change",       "verb.cognition",   "verb.communication", "verb.competition",  "verb.consumption",
      "verb.contact",      "verb.creation",    "verb.emotion",     "verb.motion",         "verb.perception",
      "verb.possession",   "verb.social",      "verb.stative",     "verb.weather",        "adj.ppl"};
  return names;
}

}  // namespace smx::data
