// WordNet 3.0 reader: parses the database files data.noun/.verb/.adj/.adv
// (Debian package wordnet-base) into synsets with their words, definition,
// example sentences and lexicographer file. The offline pre-training corpus
// and the wordnet-lexname fine-tuning task are made from these.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/data/data_error.h"

namespace smx::data {

/// One line of a WordNet data file.
struct Synset {
  /// Byte offset of the line in its data file: the synset's id within its part of speech.
  uint32_t offset = 0;
  /// ss_type as in the file: 'n' noun, 'v' verb, 'a' adjective, 's' adjective satellite, 'r' adverb.
  char pos = 'n';
  /// Index into lexicographer_files(): the synset's lexicographer category.
  int lex_filenum = 0;
  /// The synonyms, underscores turned to spaces, adjective markers "(a)", "(p)", "(ip)" removed.
  std::vector<std::string> words;
  /// The gloss without its examples, e.g. "a member of the genus Canis ...; occurs in many breeds".
  std::string definition;
  /// The double-quoted sentences after the definition, quotes (and any "- Author" after them) stripped.
  std::vector<std::string> examples;
};

/// $SMX_WORDNET_DIR when set and not empty, else /usr/share/wordnet.
std::filesystem::path default_wordnet_dir();

/// Every synset of dir/data.noun, data.verb, data.adj and data.adv, in that order and in file
/// order within each. Throws DataError naming the file when one is missing (with the hint to
/// install the Debian package wordnet-base) and naming file and line for a malformed line.
std::vector<Synset> read_wordnet(const std::filesystem::path& dir);

/// The 45 lexicographer file names of WordNet 3.0, indexed by lex_filenum:
/// "adj.all", "adj.pert", "adv.all", "noun.Tops", ..., "verb.weather", "adj.ppl".
const std::vector<std::string>& lexicographer_files();

}  // namespace smx::data
