#include "trust/manifest.h"

#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "test_helpers.h"

namespace bpfwarden {
namespace {

using namespace std::string_literals;

const std::string kShaA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string kShaB = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

const std::string kHeader = "bpfwarden-manifest 1\nversion 7\ncreated 2026-11-21T05:00:00Z\n";
const std::string kImage = "image file_guard 23456 " + kShaA + "\n";
const std::string kProgram = "program file_guard bw_file_open\n";

// A realistic two-image set in its canonical form.
const std::string kExampleText = kHeader + kImage + kProgram +
                                 "program file_guard bw_file_permission\n"
                                 "map file_guard file_rules\n"
                                 "map file_guard events\n"
                                 "map file_guard file_gua.bss\n"
                                 "image exec_audit 9876 " +
                                 kShaB +
                                 "\n"
                                 "program exec_audit bw_exec\n";

Manifest example() {
    Manifest manifest;
    manifest.version = 7;
    manifest.created = "2026-11-21T05:00:00Z";
    manifest.images.push_back(ManifestImage{
        .name = "file_guard",
        .size = 23456,
        .sha256 = kShaA,
        .programs = {"bw_file_open", "bw_file_permission"},
        .maps = {"file_rules", "events", "file_gua.bss"},
    });
    manifest.images.push_back(ManifestImage{
        .name = "exec_audit",
        .size = 9876,
        .sha256 = kShaB,
        .programs = {"bw_exec"},
        .maps = {},
    });
    return manifest;
}

Result<Manifest> parse(std::string_view text, const std::string& source = "manifest") {
    return parse_manifest(std::span(reinterpret_cast<const unsigned char*>(text.data()), text.size()), source);
}

// The context of the error parse() returns, or a marker that it succeeded.
std::string parse_error(std::string_view text) {
    auto result = parse(text);
    if (result)
        return "<parsed>";
    EXPECT_EQ(result.error().errnum(), EINVAL) << result.error().message();
    return result.error().context();
}

std::string validate_error(const Manifest& manifest) {
    auto result = validate_manifest(manifest);
    if (result)
        return "<valid>";
    EXPECT_EQ(result.error().errnum(), EINVAL) << result.error().message();
    return result.error().context();
}

std::string image_line(int index) {
    char name[16];
    std::snprintf(name, sizeof name, "img%03d", index);
    return "image "s + name + " 1 " + kShaA + "\n";
}

std::string program_line(int image, const std::string& program) {
    char name[16];
    std::snprintf(name, sizeof name, "img%03d", image);
    return "program "s + name + " " + program + "\n";
}

// A valid manifest of exactly kManifestMaxBytes bytes: images of 64-character
// program names, the last few lines cut to length.
std::string manifest_of_max_size() {
    std::string text = "bpfwarden-manifest 1\nversion 1\ncreated 2026-01-01T00:00:00Z\n";
    int image = -1;
    int programs = 0;
    const auto add_image = [&] {
        text += image_line(++image);
        programs = 0;
    };
    // "program imgNNN <name>\n" is 16 bytes plus the name.
    const auto add_program = [&](size_t line_length) {
        std::string name = "p" + std::to_string(programs) + "_";
        name.resize(line_length - 16, 'x');
        text += program_line(image, name);
        ++programs;
    };
    add_image();
    while (kManifestMaxBytes - text.size() > 400) {
        if (programs == 256)
            add_image();
        add_program(80);
    }
    if (programs > 240)
        add_image();
    while (kManifestMaxBytes - text.size() > 80)
        add_program(std::min<size_t>(80, kManifestMaxBytes - text.size() - 17));
    add_program(kManifestMaxBytes - text.size());
    return text;
}

TEST(ManifestParse, ReadsEveryField) {
    auto manifest = parse(kExampleText);
    ASSERT_OK(manifest);
    EXPECT_EQ(manifest->format, kManifestFormat);
    EXPECT_EQ(manifest->version, 7u);
    EXPECT_EQ(manifest->created, "2026-11-21T05:00:00Z");
    ASSERT_EQ(manifest->images.size(), 2u);
    EXPECT_EQ(manifest->images[0].name, "file_guard");
    EXPECT_EQ(manifest->images[0].size, 23456u);
    EXPECT_EQ(manifest->images[0].sha256, kShaA);
    EXPECT_EQ(manifest->images[0].programs, (std::vector<std::string>{"bw_file_open", "bw_file_permission"}));
    EXPECT_EQ(manifest->images[0].maps, (std::vector<std::string>{"file_rules", "events", "file_gua.bss"}));
    EXPECT_EQ(manifest->images[1].name, "exec_audit");
    EXPECT_TRUE(manifest->images[1].maps.empty());
    EXPECT_EQ(*manifest, example());
}

TEST(ManifestParse, RoundTripIsByteExact) {
    auto manifest = parse(kExampleText);
    ASSERT_OK(manifest);
    EXPECT_EQ(serialize_manifest(*manifest), kExampleText);
    EXPECT_EQ(serialize_manifest(example()), kExampleText);

    auto again = parse(serialize_manifest(example()));
    ASSERT_OK(again);
    EXPECT_EQ(*again, example());
}

TEST(ManifestParse, KeepsTheGivenOrder) {
    Manifest manifest = example();
    std::swap(manifest.images[0], manifest.images[1]);
    std::swap(manifest.images[1].maps[0], manifest.images[1].maps[2]);
    ASSERT_OK(validate_manifest(manifest));
    auto parsed = parse(serialize_manifest(manifest));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, manifest);
    EXPECT_EQ(parsed->images[0].name, "exec_audit");
    EXPECT_EQ(parsed->images[1].maps.front(), "file_gua.bss");
}

TEST(ManifestParse, AcceptsMapsOnlyImages) {
    // The policy store: an object of maps alone, loaded on every kernel.
    const std::string text = kHeader + "image policy_maps 4096 " + kShaB + "\n" +
                             "map policy_maps file_rules\n"
                             "map policy_maps exec_rules\n" +
                             kImage + kProgram;
    auto manifest = parse(text);
    ASSERT_OK(manifest);
    ASSERT_NE(manifest->find("policy_maps"), nullptr);
    EXPECT_TRUE(manifest->find("policy_maps")->programs.empty());
    EXPECT_EQ(manifest->find("policy_maps")->maps, (std::vector<std::string>{"file_rules", "exec_rules"}));
    EXPECT_OK(validate_manifest(*manifest));
    EXPECT_EQ(serialize_manifest(*manifest), text);
}

TEST(ManifestParse, FindsImagesByName) {
    const Manifest manifest = example();
    ASSERT_NE(manifest.find("exec_audit"), nullptr);
    EXPECT_EQ(manifest.find("exec_audit")->size, 9876u);
    EXPECT_EQ(manifest.find("file_guard"), &manifest.images[0]);
    EXPECT_EQ(manifest.find("file_guar"), nullptr);
    EXPECT_EQ(manifest.find(""), nullptr);
}

TEST(ManifestParse, ErrorsNameTheSource) {
    auto result = parse(kHeader, "/usr/lib/bpfwarden/images/manifest");
    EXPECT_ERRNO(result, EINVAL);
    EXPECT_EQ(result.error().context(),
              "/usr/lib/bpfwarden/images/manifest:4: expected an 'image' line, found the end of the file");
    EXPECT_EQ(parse("", "/x/manifest").error().context(), "/x/manifest: empty manifest");
}

TEST(ManifestParse, AcceptsTheLimits) {
    const std::string name64(64, 'n');
    const std::string text =
        "bpfwarden-manifest 1\nversion 9223372036854775807\ncreated 9999-12-31T23:59:59Z\n"
        "image " +
        name64 + " 16777216 " + kShaA + "\n" + "program " + name64 + " " + name64 + "\n" + "map " + name64 + " " +
        std::string(64, '.') + "\n" + "image a 1 " + std::string(64, 'f') + "\n" +
        "program a _\n"
        "map a .bss\n"
        "image Z-9_ 2 " +
        std::string(64, '0') + "\n" + "program Z-9_ x\n";
    auto manifest = parse(text);
    ASSERT_OK(manifest);
    EXPECT_EQ(manifest->version, kManifestMaxVersion);
    EXPECT_EQ(manifest->images[0].size, kManifestMaxImageBytes);
    EXPECT_EQ(manifest->images[1].size, 1u);
    EXPECT_EQ(serialize_manifest(*manifest), text);
    EXPECT_OK(validate_manifest(*manifest));
}

TEST(ManifestParse, AcceptsValidDates) {
    for (const char* created : {"1970-01-01T00:00:00Z", "2024-02-29T12:30:59Z", "2000-02-29T23:59:59Z",
                                "2026-12-31T00:00:00Z", "2026-04-30T01:02:03Z"}) {
        const std::string text = "bpfwarden-manifest 1\nversion 1\ncreated "s + created + "\n" + kImage + kProgram;
        EXPECT_OK(parse(text));
    }
}

TEST(ManifestParse, AcceptsAsManyImagesAndMembersAsTheLimits) {
    std::string text = kHeader;
    for (int i = 0; i < 256; ++i)
        text += image_line(i) + program_line(i, "p");
    EXPECT_OK(parse(text));
    EXPECT_EQ(parse_error(text + image_line(256) + program_line(256, "p")), "manifest:516: more than 256 images");

    std::string members = kHeader + image_line(0);
    for (int i = 0; i < 256; ++i)
        members += program_line(0, "p" + std::to_string(i));
    for (int i = 0; i < 256; ++i)
        members += "map img000 m" + std::to_string(i) + "\n";
    auto manifest = parse(members);
    ASSERT_OK(manifest);
    EXPECT_EQ(manifest->images[0].programs.size(), 256u);
    EXPECT_EQ(manifest->images[0].maps.size(), 256u);
    EXPECT_EQ(parse_error(members + "map img000 m256\n"), "manifest:517: image 'img000' lists more than 256 maps");

    std::string programs = kHeader + image_line(0);
    for (int i = 0; i < 257; ++i)
        programs += program_line(0, "p" + std::to_string(i));
    EXPECT_EQ(parse_error(programs), "manifest:261: image 'img000' lists more than 256 programs");
}

TEST(ManifestParse, AcceptsExactlyOneMebibyte) {
    const std::string text = manifest_of_max_size();
    ASSERT_EQ(text.size(), kManifestMaxBytes);
    auto manifest = parse(text);
    ASSERT_OK(manifest);
    EXPECT_EQ(serialize_manifest(*manifest), text);
    EXPECT_OK(validate_manifest(*manifest));
}

TEST(ManifestParse, RefusesOneByteMoreThanOneMebibyte) {
    const std::string text = manifest_of_max_size() + "x";
    EXPECT_EQ(parse_error(text), "manifest: manifest is 1048577 bytes, more than the 1048576 allowed");
    // Refused for its size alone: it is well-formed otherwise.
    auto manifest = parse(manifest_of_max_size());
    ASSERT_OK(manifest);
    manifest->images.back().maps.push_back("m");
    EXPECT_EQ(parse_error(serialize_manifest(*manifest)),
              "manifest: manifest is 1048589 bytes, more than the 1048576 allowed");
}

TEST(ManifestParse, NonTextIsRefusedOnItsFirstLine) {
    const std::string elf =
        "\x7f"
        "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"s;
    EXPECT_EQ(parse_error(elf), "manifest:1: control character 0x7f at column 1");
    EXPECT_EQ(parse_error("\0\0\0\0"s), "manifest:1: NUL byte at column 1: a manifest is text");
    EXPECT_EQ(parse_error("\xef\xbb\xbf"
                          "bpfwarden-manifest 1\n"),
              "manifest:1: non-ASCII byte 0xef at column 1: a manifest is ASCII text");
}

// ---------------------------------------------------------------------------
// Every rule, broken once: the error names the line and the reason.

struct Broken {
    const char* name;
    std::string text;
    std::string error;  // the whole Error::context()
};

void PrintTo(const Broken& broken, std::ostream* out) { *out << broken.name; }

class ManifestRejects : public testing::TestWithParam<Broken> {};

TEST_P(ManifestRejects, NamingLineAndReason) {
    const Broken& broken = GetParam();
    EXPECT_EQ(parse_error(broken.text), broken.error);
}

const std::string kSize = "23456 ";
const std::string kHeader12 = "bpfwarden-manifest 1\nversion 7\n";  // lines 1-2

const Broken kBroken[] = {
    // Whole-file and byte-level rules.
    {"empty", "", "manifest: empty manifest"},
    {"crlf", "bpfwarden-manifest 1\r\nversion 7\r\n",
     "manifest:1: carriage return at column 21: lines end with \\n alone (CRLF is not accepted)"},
    {"no_final_newline", kHeader + kImage + "program file_guard bw_file_open",
     "manifest:5: missing newline at the end of the file"},
    {"no_newline_at_all", "bpfwarden-manifest 1", "manifest:1: missing newline at the end of the file"},
    {"blank_line", kHeader + "\n" + kImage + kProgram, "manifest:4: blank line"},
    {"blank_last_line", kHeader + kImage + kProgram + "\n", "manifest:6: blank line"},
    {"trailing_space", "bpfwarden-manifest 1\nversion 7 \n", "manifest:2: trailing space at column 10"},
    {"leading_space", kHeader + " " + kImage + kProgram, "manifest:4: leading space"},
    {"two_spaces", kHeader + kImage + "program  file_guard bw_file_open\n",
     "manifest:5: two spaces at column 8: fields are separated by a single space"},
    {"tab", kHeader + kImage + "program\tfile_guard bw_file_open\n",
     "manifest:5: tab at column 8: fields are separated by a single space"},
    {"nul_byte", "bpfwarden-manifest 1\nversion 7\0\n"s, "manifest:2: NUL byte at column 10: a manifest is text"},
    {"non_ascii", kHeader + kImage + "program file_guard bw_f\xc3\xa9\n",
     "manifest:5: non-ASCII byte 0xc3 at column 24: a manifest is ASCII text"},
    {"escape_character", kHeader + "\x1b[2J" + kImage, "manifest:4: control character 0x1b at column 1"},

    // Line 1: magic and format.
    {"not_a_manifest", "hello world\n",
     "manifest:1: not a bpfwarden manifest: the first line must be 'bpfwarden-manifest 1'"},
    {"magic_not_first", kHeader12.substr(21) + kHeader12,
     "manifest:1: not a bpfwarden manifest: the first line must be 'bpfwarden-manifest 1'"},
    {"format_missing", "bpfwarden-manifest\n", "manifest:1: the first line must be 'bpfwarden-manifest <format>'"},
    {"format_extra_field", "bpfwarden-manifest 1 x\n",
     "manifest:1: the first line must be 'bpfwarden-manifest <format>'"},
    {"format_unknown", "bpfwarden-manifest 2\nversion 7\n",
     "manifest:1: unsupported manifest format '2': this bpfwarden reads format 1"},
    {"format_zero", "bpfwarden-manifest 0\n",
     "manifest:1: unsupported manifest format '0': this bpfwarden reads format 1"},
    {"format_huge", "bpfwarden-manifest 99999999999999999999999\n",
     "manifest:1: unsupported manifest format '99999999999999999999999': this bpfwarden reads format 1"},
    {"format_leading_zero", "bpfwarden-manifest 01\n", "manifest:1: format '01' has a leading zero"},
    {"format_not_decimal", "bpfwarden-manifest v1\n", "manifest:1: format 'v1' is not a decimal number"},

    // Line 2: version.
    {"truncated_after_magic", "bpfwarden-manifest 1\n",
     "manifest:2: expected 'version <number>', found the end of the file"},
    {"version_missing", "bpfwarden-manifest 1\ncreated 2026-11-21T05:00:00Z\n",
     "manifest:2: expected 'version <number>' on line 2, found 'created'"},
    {"version_zero", "bpfwarden-manifest 1\nversion 0\n", "manifest:2: version 0 is not allowed: versions start at 1"},
    {"version_2_pow_63", "bpfwarden-manifest 1\nversion 9223372036854775808\n",
     "manifest:2: version 9223372036854775808 is larger than 9223372036854775807"},
    {"version_overflow", "bpfwarden-manifest 1\nversion 18446744073709551616\n",
     "manifest:2: version '18446744073709551616' is larger than 9223372036854775807"},
    {"version_leading_zero", "bpfwarden-manifest 1\nversion 07\n", "manifest:2: version '07' has a leading zero"},
    {"version_negative", "bpfwarden-manifest 1\nversion -1\n", "manifest:2: version '-1' is not a decimal number"},
    {"version_plus", "bpfwarden-manifest 1\nversion +7\n", "manifest:2: version '+7' is not a decimal number"},
    {"version_hex", "bpfwarden-manifest 1\nversion 0x10\n", "manifest:2: version '0x10' is not a decimal number"},
    {"version_two_fields", "bpfwarden-manifest 1\nversion 7 8\n",
     "manifest:2: 'version' takes one field: version <number>"},
    {"version_no_field", "bpfwarden-manifest 1\nversion\n", "manifest:2: 'version' takes one field: version <number>"},

    // Line 3: created.
    {"truncated_after_version", kHeader12, "manifest:3: expected 'created <time>', found the end of the file"},
    {"created_missing", kHeader12 + kImage, "manifest:3: expected 'created <time>' on line 3, found 'image'"},
    {"created_february_30", kHeader12 + "created 2026-02-30T05:00:00Z\n",
     "manifest:3: created time '2026-02-30T05:00:00Z' has day 30, but 2026-02 has 28 days"},
    {"created_not_a_leap_year", kHeader12 + "created 2100-02-29T05:00:00Z\n",
     "manifest:3: created time '2100-02-29T05:00:00Z' has day 29, but 2100-02 has 28 days"},
    {"created_april_31", kHeader12 + "created 2026-04-31T05:00:00Z\n",
     "manifest:3: created time '2026-04-31T05:00:00Z' has day 31, but 2026-04 has 30 days"},
    {"created_day_zero", kHeader12 + "created 2026-01-00T05:00:00Z\n",
     "manifest:3: created time '2026-01-00T05:00:00Z' has day 0, but 2026-01 has 31 days"},
    {"created_month_13", kHeader12 + "created 2026-13-01T05:00:00Z\n",
     "manifest:3: created time '2026-13-01T05:00:00Z' has month 13; months are 01 to 12"},
    {"created_month_zero", kHeader12 + "created 2026-00-01T05:00:00Z\n",
     "manifest:3: created time '2026-00-01T05:00:00Z' has month 0; months are 01 to 12"},
    {"created_hour_24", kHeader12 + "created 2026-11-21T24:00:00Z\n",
     "manifest:3: created time '2026-11-21T24:00:00Z' has hour 24; hours are 00 to 23"},
    {"created_minute_60", kHeader12 + "created 2026-11-21T05:60:00Z\n",
     "manifest:3: created time '2026-11-21T05:60:00Z' has minute 60; minutes are 00 to 59"},
    {"created_leap_second", kHeader12 + "created 2016-12-31T23:59:60Z\n",
     "manifest:3: created time '2016-12-31T23:59:60Z' has second 60; seconds are 00 to 59 (no leap seconds)"},
    {"created_before_1970", kHeader12 + "created 1969-12-31T23:59:59Z\n",
     "manifest:3: created time '1969-12-31T23:59:59Z' is before 1970"},
    {"created_offset", kHeader12 + "created 2026-11-21T05:00:00+00:00\n",
     "manifest:3: created time '2026-11-21T05:00:00+00:00' is not of the form YYYY-MM-DDTHH:MM:SSZ (RFC 3339, UTC)"},
    {"created_lower_case", kHeader12 + "created 2026-11-21t05:00:00z\n",
     "manifest:3: created time '2026-11-21t05:00:00z' is not of the form YYYY-MM-DDTHH:MM:SSZ (RFC 3339, UTC)"},
    {"created_fraction", kHeader12 + "created 2026-11-21T05:00:00.5Z\n",
     "manifest:3: created time '2026-11-21T05:00:00.5Z' is not of the form YYYY-MM-DDTHH:MM:SSZ (RFC 3339, UTC)"},
    {"created_unix_time", kHeader12 + "created 1795237200\n",
     "manifest:3: created time '1795237200' is not of the form YYYY-MM-DDTHH:MM:SSZ (RFC 3339, UTC)"},
    {"created_two_fields", kHeader12 + "created 2026-11-21 05:00:00Z\n",
     "manifest:3: 'created' takes one field: created YYYY-MM-DDTHH:MM:SSZ"},

    // Lines 4 on: keywords and structure.
    {"no_images", kHeader, "manifest:4: expected an 'image' line, found the end of the file"},
    {"unknown_keyword", kHeader + kImage + kProgram + "signature abc\n", "manifest:6: unknown keyword 'signature'"},
    {"keyword_upper_case", kHeader + "IMAGE file_guard 23456 " + kShaA + "\n", "manifest:4: unknown keyword 'IMAGE'"},
    {"second_version", kHeader + kImage + kProgram + "version 8\n",
     "manifest:6: 'version' may appear only once, on line 2"},
    {"second_created", kHeader + "created 2026-11-22T05:00:00Z\n",
     "manifest:4: 'created' may appear only once, on line 3"},
    {"second_magic", kHeader + kImage + kProgram + kHeader, "manifest:6: 'bpfwarden-manifest' belongs on line 1 only"},

    // image lines.
    {"image_without_programs_or_maps", kHeader + kImage,
     "manifest:4: image 'file_guard' lists no programs and no maps: every image has at least one 'program' or "
     "'map' line"},
    {"empty_image_then_image", kHeader + kImage + "image b 1 " + kShaB + "\nprogram b p\n",
     "manifest:4: image 'file_guard' lists no programs and no maps: every image has at least one 'program' or "
     "'map' line"},
    {"duplicate_image", kHeader + kImage + kProgram + kImage + kProgram,
     "manifest:6: duplicate image 'file_guard' (first on line 4)"},
    {"image_missing_sha", kHeader + "image file_guard 23456\n",
     "manifest:4: 'image' takes three fields: image <name> <size> <sha256>"},
    {"image_extra_field", kHeader + "image file_guard 23456 " + kShaA + " x\n",
     "manifest:4: 'image' takes three fields: image <name> <size> <sha256>"},
    {"image_name_with_dot", kHeader + "image file.guard 23456 " + kShaA + "\n",
     "manifest:4: image name 'file.guard' contains '.'; allowed are A-Z a-z 0-9 _ -"},
    {"image_name_with_slash", kHeader + "image ../x 23456 " + kShaA + "\n",
     "manifest:4: image name '../x' contains '.'; allowed are A-Z a-z 0-9 _ -"},
    {"image_name_leading_dash", kHeader + "image -x 23456 " + kShaA + "\n",
     "manifest:4: image name '-x' starts with '-'"},
    {"image_name_too_long", kHeader + "image " + std::string(65, 'a') + " 1 " + kShaA + "\n",
     "manifest:4: image name '" + std::string(64, 'a') + "...' is 65 characters long, more than 64"},
    {"size_zero", kHeader + "image file_guard 0 " + kShaA + "\n",
     "manifest:4: size of image 'file_guard' is 0: an image has at least one byte"},
    {"size_too_big", kHeader + "image file_guard 16777217 " + kShaA + "\n",
     "manifest:4: size of image 'file_guard' is 16777217 bytes, more than the 16777216 (16 MiB) allowed"},
    {"size_overflow", kHeader + "image file_guard 18446744073709551616 " + kShaA + "\n",
     "manifest:4: size of image 'file_guard' '18446744073709551616' is larger than 16777216"},
    {"size_leading_zero", kHeader + "image file_guard 023456 " + kShaA + "\n",
     "manifest:4: size of image 'file_guard' '023456' has a leading zero"},
    {"size_exponent", kHeader + "image file_guard 2e4 " + kShaA + "\n",
     "manifest:4: size of image 'file_guard' '2e4' is not a decimal number"},
    {"sha_bad_hex", kHeader + "image file_guard 23456 " + kShaA.substr(0, 63) + "g\n",
     "manifest:4: sha256 of image 'file_guard' must be 64 lower-case hex digits (found 'g')"},
    {"sha_upper_case", kHeader + "image file_guard 23456 E" + kShaA.substr(1) + "\n",
     "manifest:4: sha256 of image 'file_guard' must be 64 lower-case hex digits (upper-case 'E' is not accepted)"},
    {"sha_short", kHeader + "image file_guard 23456 " + kShaA.substr(1) + "\n",
     "manifest:4: sha256 of image 'file_guard' must be 64 lower-case hex digits (it has 63)"},
    {"sha_long", kHeader + "image file_guard 23456 " + kShaA + "0\n",
     "manifest:4: sha256 of image 'file_guard' must be 64 lower-case hex digits (it has 65)"},
    {"sha_prefixed", kHeader + "image file_guard 23456 sha256:" + kShaA.substr(7) + "\n",
     "manifest:4: sha256 of image 'file_guard' must be 64 lower-case hex digits (found 's')"},

    // program and map lines.
    {"program_before_any_image", kHeader + kProgram,
     "manifest:4: program 'bw_file_open' refers to image 'file_guard', which is not declared above"},
    {"program_for_undeclared_image", kHeader + kImage + kProgram + "program ghost bw_x\n",
     "manifest:6: program 'bw_x' refers to image 'ghost', which is not declared above"},
    {"map_for_undeclared_image", kHeader + kImage + kProgram + "map ghost m\n",
     "manifest:6: map 'm' refers to image 'ghost', which is not declared above"},
    {"program_outside_its_block",
     kHeader + kImage + kProgram + "image b 1 " + kShaB + "\nprogram b p\n" + "program file_guard bw_late\n",
     "manifest:8: program line for image 'file_guard' (line 4) is not in that image's block: an image's program "
     "and map lines directly follow its image line"},
    {"program_after_map", kHeader + kImage + kProgram + "map file_guard events\nprogram file_guard bw_late\n",
     "manifest:7: program line after the map lines of image 'file_guard': an image's programs come before its maps"},
    {"duplicate_program", kHeader + kImage + kProgram + "program file_guard bw_x\n" + kProgram,
     "manifest:7: duplicate program 'bw_file_open' in image 'file_guard' (first on line 5)"},
    {"duplicate_map", kHeader + kImage + kProgram + "map file_guard events\nmap file_guard events\n",
     "manifest:7: duplicate map 'events' in image 'file_guard' (first on line 6)"},
    {"program_name_with_dot", kHeader + kImage + "program file_guard bw.open\n",
     "manifest:5: program name 'bw.open' of image 'file_guard' contains '.'; allowed are A-Z a-z 0-9 _"},
    {"map_name_with_dash", kHeader + kImage + kProgram + "map file_guard file-rules\n",
     "manifest:6: map name 'file-rules' of image 'file_guard' contains '-'; allowed are A-Z a-z 0-9 _ ."},
    {"map_name_too_long", kHeader + kImage + kProgram + "map file_guard " + std::string(65, 'm') + "\n",
     "manifest:6: map name '" + std::string(64, 'm') +
         "...' of image 'file_guard' is 65 characters long, more "
         "than 64"},
    {"program_missing_name", kHeader + kImage + "program bw_file_open\n",
     "manifest:5: 'program' takes two fields: program <image> <name>"},
    {"map_extra_field", kHeader + kImage + kProgram + "map file_guard events hash\n",
     "manifest:6: 'map' takes two fields: map <image> <name>"},
    {"quotes_are_escaped", kHeader + kImage + "program file_guard it's\n",
     "manifest:5: program name 'it\\x27s' of image 'file_guard' contains byte 0x27; allowed are A-Z a-z 0-9 _"},
};

INSTANTIATE_TEST_SUITE_P(Manifest, ManifestRejects, testing::ValuesIn(kBroken),
                         [](const testing::TestParamInfo<Broken>& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------
// validate_manifest: the parser's rules for manifests built in code.

TEST(ManifestValidate, AcceptsTheExample) { EXPECT_OK(validate_manifest(example())); }

TEST(ManifestValidate, RefusesWhatTheParserRefuses) {
    const auto broken = [](auto&& edit) {
        Manifest manifest = example();
        edit(manifest);
        return validate_error(manifest);
    };
    EXPECT_EQ(broken([](Manifest& m) { m.format = 2; }),
              "manifest: unsupported manifest format 2: this bpfwarden writes format 1");
    EXPECT_EQ(broken([](Manifest& m) { m.version = 0; }), "manifest: version 0 is not allowed: versions start at 1");
    EXPECT_EQ(broken([](Manifest& m) { m.version = kManifestMaxVersion + 1; }),
              "manifest: version 9223372036854775808 is larger than 9223372036854775807");
    EXPECT_EQ(broken([](Manifest& m) { m.created = ""; }),
              "manifest: created time '' is not of the form YYYY-MM-DDTHH:MM:SSZ (RFC 3339, UTC)");
    EXPECT_EQ(broken([](Manifest& m) { m.created = "2026-02-29T00:00:00Z"; }),
              "manifest: created time '2026-02-29T00:00:00Z' has day 29, but 2026-02 has 28 days");
    EXPECT_EQ(broken([](Manifest& m) { m.images.clear(); }), "manifest: no images: a manifest lists at least one");
    EXPECT_EQ(broken([](Manifest& m) { m.images[1].name = "file_guard"; }), "manifest: duplicate image 'file_guard'");
    EXPECT_EQ(broken([](Manifest& m) { m.images[1].name = ""; }), "manifest: image name '' is empty");
    EXPECT_EQ(broken([](Manifest& m) { m.images[0].size = 0; }),
              "manifest: size of image 'file_guard' is 0: an image has at least one byte");
    EXPECT_EQ(broken([](Manifest& m) { m.images[0].size = kManifestMaxImageBytes + 1; }),
              "manifest: size of image 'file_guard' is 16777217 bytes, more than the 16777216 (16 MiB) allowed");
    EXPECT_EQ(broken([](Manifest& m) { m.images[0].sha256[10] = 'A'; }),
              "manifest: sha256 of image 'file_guard' must be 64 lower-case hex digits (upper-case 'A' is not "
              "accepted)");
    EXPECT_EQ(broken([](Manifest& m) {
                  m.images[1].programs.clear();
                  m.images[1].maps.clear();
              }),
              "manifest: image 'exec_audit' lists no programs and no maps: every image has at least one 'program' or "
              "'map' line");
    EXPECT_EQ(broken([](Manifest& m) { m.images[0].programs.push_back("bw_file_open"); }),
              "manifest: duplicate program 'bw_file_open' in image 'file_guard'");
    EXPECT_EQ(broken([](Manifest& m) { m.images[0].maps.push_back("events"); }),
              "manifest: duplicate map 'events' in image 'file_guard'");
    EXPECT_EQ(broken([](Manifest& m) { m.images[0].maps.push_back(""); }),
              "manifest: map name '' of image 'file_guard' is empty");
    EXPECT_EQ(broken([](Manifest& m) {
                  m.images[1].maps.resize(257);
                  for (size_t i = 0; i < m.images[1].maps.size(); ++i)
                      m.images[1].maps[i] = "m" + std::to_string(i);
              }),
              "manifest: image 'exec_audit' lists more than 256 maps");
    EXPECT_EQ(broken([](Manifest& m) {
                  for (int i = 0; i < 255; ++i)
                      m.images.push_back(ManifestImage{"i" + std::to_string(i), 1, kShaA, {"p"}, {}});
              }),
              "manifest: more than 256 images");
}

TEST(ManifestValidate, RefusesNamesThatWouldForgeLines) {
    Manifest manifest = example();
    manifest.images[0].programs.push_back("p\nimage evil 1 " + kShaA);
    EXPECT_EQ(validate_error(manifest),
              "manifest: program name 'p\\x0aimage evil 1 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca...' "
              "of image 'file_guard' is 79 characters long, more than 64");

    manifest = example();
    manifest.images[0].maps.push_back("a b");
    EXPECT_EQ(validate_error(manifest),
              "manifest: map name 'a b' of image 'file_guard' contains byte 0x20; allowed are A-Z a-z 0-9 _ .");
}

TEST(ManifestValidate, RefusesManifestsLargerThanOneMebibyte) {
    Manifest manifest = example();
    manifest.images.clear();
    for (int i = 0; i < 60; ++i) {
        ManifestImage image{"img" + std::to_string(i), 1, kShaA, {}, {}};
        for (int p = 0; p < 256; ++p)
            image.programs.push_back("p" + std::to_string(p) + "_" + std::string(58, 'x'));
        manifest.images.push_back(std::move(image));
    }
    const size_t bytes = serialize_manifest(manifest).size();
    ASSERT_GT(bytes, kManifestMaxBytes);
    EXPECT_EQ(validate_error(manifest),
              "manifest: the manifest would be " + std::to_string(bytes) + " bytes, more than the 1048576 allowed");
}

TEST(ManifestValidate, AgreesWithTheParserOnTheMaximumSize) {
    auto manifest = parse(manifest_of_max_size());
    ASSERT_OK(manifest);
    EXPECT_OK(validate_manifest(*manifest));
    manifest->images.back().maps.push_back("m");
    EXPECT_EQ(validate_error(*manifest),
              "manifest: the manifest would be 1048589 bytes, more than the 1048576 allowed");
}

// ---------------------------------------------------------------------------
// format_rfc3339_utc

TEST(ManifestCreated, FormatsUtc) {
    EXPECT_EQ(format_rfc3339_utc(0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(format_rfc3339_utc(951782400), "2000-02-29T00:00:00Z");
    EXPECT_EQ(format_rfc3339_utc(1795237200), "2026-11-21T05:00:00Z");
    EXPECT_EQ(format_rfc3339_utc(2147483648), "2038-01-19T03:14:08Z");
    EXPECT_EQ(format_rfc3339_utc(253402300799), "9999-12-31T23:59:59Z");
}

TEST(ManifestCreated, ClampsToTheParsableRange) {
    EXPECT_EQ(format_rfc3339_utc(-1), "1970-01-01T00:00:00Z");
    EXPECT_EQ(format_rfc3339_utc(253402300800), "9999-12-31T23:59:59Z");
    EXPECT_EQ(format_rfc3339_utc(std::numeric_limits<std::time_t>::max()), "9999-12-31T23:59:59Z");
    EXPECT_EQ(format_rfc3339_utc(std::numeric_limits<std::time_t>::min()), "1970-01-01T00:00:00Z");
}

TEST(ManifestCreated, AgreesWithGmtimeAndTheParser) {
    // Every day boundary of 1970..2400 and an odd second in between, spanning
    // leap years and the 2100/2200/2300 non-leap years.
    for (std::time_t t = 0; t < 13569465600; t += 86400 * 7 + 3601) {
        struct tm tm{};
        ASSERT_NE(gmtime_r(&t, &tm), nullptr);
        char expected[32];
        ASSERT_GT(std::strftime(expected, sizeof expected, "%Y-%m-%dT%H:%M:%SZ", &tm), 0u);
        const std::string created = format_rfc3339_utc(t);
        ASSERT_EQ(created, expected) << "t=" << t;

        Manifest manifest = example();
        manifest.created = created;
        ASSERT_OK(validate_manifest(manifest));
    }
}

TEST(ManifestCreated, NowIsValid) {
    Manifest manifest = example();
    manifest.created = format_rfc3339_utc(std::time(nullptr));
    EXPECT_OK(validate_manifest(manifest));
    auto parsed = parse(serialize_manifest(manifest));
    ASSERT_OK(parsed);
    EXPECT_EQ(parsed->created, manifest.created);
}

}  // namespace
}  // namespace bpfwarden
