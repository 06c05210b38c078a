// SPDX-License-Identifier: GPL-2.0-or-later
// The FTP control-line wire formats: one exact parse_ and one format_ function per format, the
// command and reply line parsers, and the table that says which verb or reply code is legal from
// which side, which command a reply answers and which parser reads it.
//
// Pure text in, values out: no I/O, never throws on wire input (Result/optional), never asserts on
// it. Every parser that reads an address or port also returns the byte range [begin, end) of the
// text that holds it, relative to the string it was given, so a rewrite can replace exactly that
// range and keep the rest of the line byte for byte.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ftpwall/core/addr.hpp"
#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/result.hpp"

namespace ftpwall {

// Which wire format an announcement used.
enum class AnnouncementKind : std::uint8_t {
  none,        // not an announcement
  port,        // PORT h1,h2,h3,h4,p1,p2                 RFC 959 4.1.2
  eprt,        // EPRT |1|192.0.2.7|6275|                RFC 2428 2
  lprt,        // LPRT 4,4,192,0,2,7,2,24,131            RFC 1639 2
  pasv_reply,  // 227 Entering Passive Mode (h1,...,p2)  RFC 959 4.1.2, RFC 1123 4.1.2.6
  epsv_reply,  // 229 Entering Extended Passive Mode (|||6446|)  RFC 2428 3
  lpsv_reply,  // 228 Entering Long Passive Mode (4,4,h1,...,2,p1,p2)  RFC 1639 2
};
std::string_view name(AnnouncementKind k);

// [begin, end) byte offsets inside a string.
struct TextRange {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t size() const { return end - begin; }
  TextRange shifted(std::size_t by) const { return {begin + by, end + by}; }
  bool operator==(const TextRange&) const = default;
};

// What a parser read out of an announcement.
struct Announced {
  Endpoint endpoint;         // for 229 only the port is meaningful (has_address == false)
  bool has_address = true;   // false for 229: the client reuses the control connection's address
  char delimiter = 0;        // EPRT/229: the delimiter the sender chose, reused by a rewrite
  TextRange range;           // the text holding address/port, relative to the parser's input
  bool operator==(const Announced&) const = default;
};

// ---- one parse/format pair per wire format ---------------------------------------------------

// PORT arguments, RFC 959 4.1.2: "PORT h1,h2,h3,h4,p1,p2", e.g. "192,0,2,7,4,1" = 192.0.2.7:1025.
// Exactly six comma-separated decimal fields, each 1-3 digits and 0-255; no signs, no spaces, nothing
// after p2. range = the whole input. format_port_args takes an IPv4 endpoint (a precondition).
Result<Announced> parse_port_args(std::string_view args);
std::string format_port_args(const Endpoint& ep);  // parse_port_args(format_port_args(e))->endpoint == e

// EPRT arguments, RFC 2428 2: "<d><net-prt><d><net-addr><d><tcp-port><d>", e.g. "|1|132.235.1.2|6275|"
// or "|2|1080::8:800:200C:417A|5282|". One delimiter d (ASCII 33-126, not a digit) used throughout;
// net-prt "1" (IPv4) or "2" (IPv6); the address in strict text form (dotted quad without leading
// zeros, RFC 4291 text, no zone); port 1-65535 without leading zeros; nothing after the last d.
// Whether the family matches the control connection is the policy's call (family_mismatch).
Result<Announced> parse_eprt_args(std::string_view args);
std::string format_eprt_args(const Endpoint& ep, char delim = '|');

// LPRT arguments, RFC 1639 2: "af,hal,h1,...,hn,pal,p1,p2", e.g. "4,4,192,0,2,7,2,4,1" for
// 192.0.2.7:1025; af 4 with hal 4 or af 6 with hal 16, pal 2, fields 0-255 as for PORT.
Result<Announced> parse_lprt_args(std::string_view args);
std::string format_lprt_args(const Endpoint& ep);

// 227 reply text (after "227 "), RFC 959 4.1.2 "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)".
// RFC 1123 4.1.2.6: the format is not standardised, clients "scan for the first digit": so do we.
// Parentheses optional, text before and after free; the six fields as for PORT and the character
// after p2 must not continue the list (digit or comma). range = the six fields only.
Result<Announced> parse_pasv_reply(std::string_view text);
std::string format_pasv_reply(const Endpoint& ep);  // "Entering Passive Mode (192,0,2,7,4,1)."

// 229 reply text (after "229 "), RFC 2428 3: "Entering Extended Passive Mode (|||6446|)". The first
// '(' must be followed by d d d port d ')' with one delimiter d (33-126, not a digit); port 1-65535.
// range = from the first d to the last d, parentheses excluded.
Result<Announced> parse_epsv_reply(std::string_view text);
std::string format_epsv_reply(std::uint16_t port, char delim = '|');
std::string format_epsv_field(std::uint16_t port, char delim = '|');  // "|||6446|": the range text

// 228 reply text (after "228 "), RFC 1639 2: "Entering Long Passive Mode (af,hal,h1,...,pal,p1,p2)",
// scanned for the first digit like 227; range = the fields.
Result<Announced> parse_lpsv_reply(std::string_view text);
std::string format_lpsv_reply(const Endpoint& ep);

// The text an announcement's range holds, for a new endpoint: what a rewrite puts in its place.
std::string format_announced(AnnouncementKind kind, const Endpoint& ep, char delim);

// ---- command lines (client -> server) --------------------------------------------------------

enum class Verb : std::uint8_t {
  other, port, eprt, lprt, pasv, epsv, lpsv, auth, ccc, rein, abor, quit, user, pass,
  retr, stor, stou, appe, list, nlst, mlsd,  // transfer commands: use the pending opening
};
std::string_view name(Verb v);

// RFC 959 5.3: "<verb> SP <args> CRLF" or "<verb> CRLF"; verbs are case-insensitive.
struct Command {
  Verb verb = Verb::other;
  std::string_view word;         // the verb letters as sent
  std::string_view args;         // after the one SP; empty when there are none
  std::size_t args_offset = 0;   // where args start in the line
  bool well_formed = true;       // false: letters followed by something other than SP or the end
};
// "PORT 192,0,2,7,4,1" -> {port, "PORT", "192,0,2,7,4,1", 5}; "retr a b" -> {retr, "retr", "a b", 5}.
// Never fails: a line that is no known verb is Verb::other.
Command parse_command(std::string_view line);

// EPSV arguments, RFC 2428 3/4: "" (any), "1", "2", "ALL" (case-insensitive).
enum class EpsvArg : std::uint8_t { any, v4, v6, all };
std::optional<EpsvArg> parse_epsv_args(std::string_view args);

// AUTH arguments, RFC 2228 / RFC 4217 / draft-murray-auth-ftp-ssl: TLS, SSL, TLS-C, TLS-P.
enum class AuthMech : std::uint8_t { tls, ssl, tls_c, tls_p, other };
AuthMech parse_auth_args(std::string_view args);

// ---- reply lines (server -> client) ----------------------------------------------------------

// RFC 959 4.2: "xyz SP text" (final line) or "xyz-text" (first line of a multi-line reply); the code
// is three digits, the first 1-6 (6yz: RFC 2228 protected replies). A multi-line reply ends on a
// line starting with the same code and SP; lines in between are text whatever they start with.
struct ReplyLine {
  std::uint16_t code = 0;
  bool final = true;            // "227 ..." (or a bare "227") vs "227-..."
  std::string_view text;        // after the separator
  std::size_t text_offset = 0;  // where text starts in the line
};
// "227 Entering Passive Mode (192,0,2,7,4,1)" -> {227, true, "Entering ...", 4}; "hello" -> nullopt.
std::optional<ReplyLine> parse_reply_line(std::string_view line);

// True if `line` ends a multi-line reply started with `code`: "227 ..." or a bare "227".
bool ends_multiline(std::string_view line, std::uint16_t code);

// ---- the tables ------------------------------------------------------------------------------

using AnnouncementParser = Result<Announced> (*)(std::string_view);

// Verbs: all are legal only client -> server; the announcing ones name their parser.
struct VerbRow {
  std::string_view word;
  Verb verb;
  Direction from;
  AnnouncementKind announces;
  AnnouncementParser parse;
};

inline constexpr std::array<VerbRow, 20> verb_table{{
    {"PORT", Verb::port, Direction::client_to_server, AnnouncementKind::port, &parse_port_args},
    {"EPRT", Verb::eprt, Direction::client_to_server, AnnouncementKind::eprt, &parse_eprt_args},
    {"LPRT", Verb::lprt, Direction::client_to_server, AnnouncementKind::lprt, &parse_lprt_args},
    {"PASV", Verb::pasv, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"EPSV", Verb::epsv, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"LPSV", Verb::lpsv, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"AUTH", Verb::auth, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"CCC", Verb::ccc, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"REIN", Verb::rein, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"ABOR", Verb::abor, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"QUIT", Verb::quit, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"USER", Verb::user, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"PASS", Verb::pass, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"RETR", Verb::retr, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"STOR", Verb::stor, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"STOU", Verb::stou, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"APPE", Verb::appe, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"LIST", Verb::list, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"NLST", Verb::nlst, Direction::client_to_server, AnnouncementKind::none, nullptr},
    {"MLSD", Verb::mlsd, Direction::client_to_server, AnnouncementKind::none, nullptr},
}};

// Reply codes the session acts on: legal only server -> client, the command each answers.
struct ReplyRow {
  std::uint16_t code;
  Direction from;
  Verb answers;
  AnnouncementKind announces;
  AnnouncementParser parse;
};

inline constexpr std::array<ReplyRow, 4> reply_table{{
    {227, Direction::server_to_client, Verb::pasv, AnnouncementKind::pasv_reply, &parse_pasv_reply},
    {228, Direction::server_to_client, Verb::lpsv, AnnouncementKind::lpsv_reply, &parse_lpsv_reply},
    {229, Direction::server_to_client, Verb::epsv, AnnouncementKind::epsv_reply, &parse_epsv_reply},
    {234, Direction::server_to_client, Verb::auth, AnnouncementKind::none, nullptr},
}};

// Table lookups; nullptr when the verb/code has no row. find_verb is case-insensitive.
const VerbRow* find_verb(std::string_view word);
const ReplyRow* find_reply(std::uint16_t code);
const VerbRow* find_verb_row(Verb v);
Direction announcer(AnnouncementKind k);  // the only side allowed to send this kind

// For holding: could a line of this direction that starts with `start` (possibly a prefix of the
// whole line) turn out to be an announcement? "PO", "port 1", "22", "229 " -> true; "RETR" -> false.
bool may_announce(Direction from, std::string_view start);

// True for transfer commands (RETR, STOR, STOU, APPE, LIST, NLST, MLSD).
constexpr bool is_transfer(Verb v) { return v >= Verb::retr; }

}  // namespace ftpwall
