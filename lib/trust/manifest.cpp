#include "trust/manifest.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "trust/bpf_image.h"
#include "trust/signed_text.h"

namespace bpfwarden {

static_assert(kManifestMaxImageBytes == kMaxImageBytes,
              "the manifest must not promise images the loader refuses to read");
static_assert(kManifestMaxVersion == signed_text::kMaxSignedVersion);
static_assert(kManifestMaxNameLength == signed_text::kMaxQuotedLength);

namespace {

using namespace signed_text;

constexpr std::string_view kMagic = "bpfwarden-manifest";
constexpr const char* kDocument = "a manifest";

Problem size_problem(std::string_view image, uint64_t size) {
    if (size == 0)
        return "size of image " + quote(image) + " is 0: an image has at least one byte";
    if (size > kManifestMaxImageBytes)
        return "size of image " + quote(image) + " is " + std::to_string(size) + " bytes, more than the " +
               std::to_string(kManifestMaxImageBytes) + " (16 MiB) allowed";
    return std::nullopt;
}

// ---------------------------------------------------------------- names

enum class NameKind { image, program, map };

bool name_char_allowed(NameKind kind, char c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
        return true;
    switch (kind) {
    case NameKind::image: return c == '-';  // image names become file names: no '.', no '/'
    case NameKind::program: return false;   // C function names
    case NameKind::map: return c == '.';    // libbpf's internal maps: ".bss", "file_gua.rodata"
    }
    return false;
}

// "image name 'x'", "program name 'x' of image 'y'".
std::string name_subject(NameKind kind, std::string_view name, std::string_view image) {
    switch (kind) {
    case NameKind::image: return "image name " + quote(name);
    case NameKind::program: return "program name " + quote(name) + " of image " + quote(image);
    case NameKind::map: return "map name " + quote(name) + " of image " + quote(image);
    }
    return quote(name);
}

const char* allowed_name_chars(NameKind kind) {
    switch (kind) {
    case NameKind::image: return "A-Z a-z 0-9 _ -";
    case NameKind::program: return "A-Z a-z 0-9 _";
    case NameKind::map: return "A-Z a-z 0-9 _ .";
    }
    return "";
}

Problem name_problem(NameKind kind, std::string_view name, std::string_view image = {}) {
    if (name.empty())
        return name_subject(kind, name, image) + " is empty";
    if (name.size() > kManifestMaxNameLength)
        return name_subject(kind, name, image) + " is " + std::to_string(name.size()) + " characters long, more than " +
               std::to_string(kManifestMaxNameLength);
    for (const char c : name) {
        if (!name_char_allowed(kind, c))
            return name_subject(kind, name, image) + " contains " + describe_char(c) + "; allowed are " +
                   allowed_name_chars(kind);
    }
    if (kind == NameKind::image && name.front() == '-')
        return name_subject(kind, name, image) + " starts with '-'";
    return std::nullopt;
}

// ---------------------------------------------------------------- fields

std::string count_problem(std::string_view image, const char* what, size_t max) {
    return "image " + quote(image) + " lists more than " + std::to_string(max) + " " + what;
}

// A maps-only image (the policy store) is fine; an image declaring nothing is not.
std::string empty_image_problem(std::string_view image) {
    return "image " + quote(image) +
           " lists no programs and no maps: every image has at least one 'program' or 'map' line";
}

// ---------------------------------------------------------------- parser

class Parser {
public:
    Parser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

    Result<Manifest> run() {
        auto problem = walk_lines(text_, kDocument, [this](size_t line_number, const Fields& fields) {
            line_number_ = line_number;
            return parse_line(fields);
        });
        if (problem)  // a problem of a block is reported on its image line
            return error(problem_line_ ? problem_line_ : problem->line, problem->reason);

        if (line_number_ < 2)
            return error(2, "expected 'version <number>', found the end of the file");
        if (line_number_ < 3)
            return error(3, "expected 'created <time>', found the end of the file");
        if (manifest_.images.empty())
            return error(line_number_ + 1, "expected an 'image' line, found the end of the file");
        if (Problem problem = finish_image())
            return error(problem_line_, *problem);
        return std::move(manifest_);
    }

private:
    std::unexpected<Error> error(size_t line, const std::string& reason) const {
        return fail(EINVAL, source_ + ":" + std::to_string(line) + ": " + reason);
    }

    Problem parse_line(const Fields& fields) {
        const std::string_view keyword = fields.field[0];
        switch (line_number_) {
        case 1: return parse_header(fields);
        case 2:
            if (keyword != "version")
                return "expected 'version <number>' on line 2, found " + quote(keyword);
            return parse_version(fields);
        case 3:
            if (keyword != "created")
                return "expected 'created <time>' on line 3, found " + quote(keyword);
            return parse_created(fields);
        default: break;
        }
        if (keyword == "image")
            return parse_image(fields);
        if (keyword == "program" || keyword == "map")
            return parse_member(fields, keyword == "program" ? NameKind::program : NameKind::map);
        if (keyword == kMagic)
            return std::string("'bpfwarden-manifest' belongs on line 1 only");
        if (keyword == "version")
            return std::string("'version' may appear only once, on line 2");
        if (keyword == "created")
            return std::string("'created' may appear only once, on line 3");
        return "unknown keyword " + quote(keyword);
    }

    Problem parse_header(const Fields& fields) {
        if (fields.field[0] != kMagic)
            return std::string("not a bpfwarden manifest: the first line must be 'bpfwarden-manifest 1'");
        if (fields.count != 2)
            return std::string("the first line must be 'bpfwarden-manifest <format>'");
        const Decimal format = parse_decimal(fields.field[1]);
        if (format.error == DecimalError::too_large ||
            (format.error == DecimalError::none && format.value != kManifestFormat))
            return "unsupported manifest format " + quote(fields.field[1]) + ": this bpfwarden reads format " +
                   std::to_string(kManifestFormat);
        if (Problem problem = decimal_syntax_problem("format", fields.field[1], format, kManifestFormat))
            return problem;
        manifest_.format = kManifestFormat;
        return std::nullopt;
    }

    Problem parse_version(const Fields& fields) {
        if (fields.count != 2)
            return std::string("'version' takes one field: version <number>");
        const Decimal version = parse_decimal(fields.field[1]);
        if (Problem problem = decimal_syntax_problem("version", fields.field[1], version, kManifestMaxVersion))
            return problem;
        if (Problem problem = version_problem(version.value))
            return problem;
        manifest_.version = version.value;
        return std::nullopt;
    }

    Problem parse_created(const Fields& fields) {
        if (fields.count != 2)
            return std::string("'created' takes one field: created YYYY-MM-DDTHH:MM:SSZ");
        if (Problem problem = created_problem(fields.field[1]))
            return problem;
        manifest_.created = std::string(fields.field[1]);
        return std::nullopt;
    }

    Problem parse_image(const Fields& fields) {
        if (fields.count != 4)
            return std::string("'image' takes three fields: image <name> <size> <sha256>");
        if (Problem problem = finish_image())
            return problem;
        if (manifest_.images.size() == kManifestMaxImages)
            return "more than " + std::to_string(kManifestMaxImages) + " images";

        const std::string_view name = fields.field[1];
        if (Problem problem = name_problem(NameKind::image, name))
            return problem;
        if (const auto first = image_lines_.find(name); first != image_lines_.end())
            return "duplicate image " + quote(name) + " (first on line " + std::to_string(first->second) + ")";

        const std::string size_subject = "size of image " + quote(name);
        const Decimal size = parse_decimal(fields.field[2]);
        if (Problem problem = decimal_syntax_problem(size_subject, fields.field[2], size, kManifestMaxImageBytes))
            return problem;
        if (Problem problem = size_problem(name, size.value))
            return problem;
        if (Problem problem = sha256_problem("image " + quote(name), fields.field[3]))
            return problem;

        image_lines_.emplace(name, line_number_);
        image_line_ = line_number_;
        program_lines_.clear();
        map_lines_.clear();
        manifest_.images.push_back(ManifestImage{
            .name = std::string(name),
            .size = size.value,
            .sha256 = std::string(fields.field[3]),
            .programs = {},
            .maps = {},
        });
        return std::nullopt;
    }

    // "program <image> <name>" and "map <image> <name>": they belong to the
    // image line above them, programs first.
    Problem parse_member(const Fields& fields, NameKind kind) {
        const bool is_program = kind == NameKind::program;
        const char* keyword = is_program ? "program" : "map";
        if (fields.count != 3)
            return std::string("'") + keyword + "' takes two fields: " + keyword + " <image> <name>";

        const std::string_view image = fields.field[1];
        const std::string_view name = fields.field[2];
        if (manifest_.images.empty() || manifest_.images.back().name != image) {
            if (const auto declared = image_lines_.find(image); declared != image_lines_.end())
                return std::string(keyword) + " line for image " + quote(image) + " (line " +
                       std::to_string(declared->second) + ") is not in that image's block: an image's " +
                       "program and map lines directly follow its image line";
            return std::string(keyword) + " " + quote(name) + " refers to image " + quote(image) +
                   ", which is not declared above";
        }

        ManifestImage& current = manifest_.images.back();
        if (is_program && !current.maps.empty())
            return "program line after the map lines of image " + quote(image) +
                   ": an image's programs come before its maps";
        if (Problem problem = name_problem(kind, name, image))
            return problem;
        auto& seen = is_program ? program_lines_ : map_lines_;
        if (const auto first = seen.find(name); first != seen.end())
            return std::string("duplicate ") + keyword + " " + quote(name) + " in image " + quote(image) +
                   " (first on line " + std::to_string(first->second) + ")";
        auto& names = is_program ? current.programs : current.maps;
        const size_t max = is_program ? kManifestMaxProgramsPerImage : kManifestMaxMapsPerImage;
        if (names.size() == max)
            return count_problem(image, is_program ? "programs" : "maps", max);

        seen.emplace(name, line_number_);
        names.emplace_back(name);
        return std::nullopt;
    }

    // Checks that need the whole block of the current image; reported on
    // the image's own line.
    Problem finish_image() {
        if (!manifest_.images.empty() && manifest_.images.back().programs.empty() &&
            manifest_.images.back().maps.empty()) {
            problem_line_ = image_line_;
            return empty_image_problem(manifest_.images.back().name);
        }
        return std::nullopt;
    }

    std::string_view text_;
    const std::string& source_;
    Manifest manifest_;
    size_t line_number_ = 0;
    size_t problem_line_ = 0;  // when a problem belongs to an earlier line
    size_t image_line_ = 0;    // line of the current image
    // Views into text_, name -> line of first appearance.
    std::map<std::string_view, size_t, std::less<>> image_lines_;
    std::map<std::string_view, size_t, std::less<>> program_lines_;
    std::map<std::string_view, size_t, std::less<>> map_lines_;
};

}  // namespace

const ManifestImage* Manifest::find(std::string_view name) const {
    const auto it =
        std::find_if(images.begin(), images.end(), [&](const ManifestImage& image) { return image.name == name; });
    return it == images.end() ? nullptr : &*it;
}

Result<Manifest> parse_manifest(std::span<const unsigned char> bytes, const std::string& source_name) {
    if (bytes.empty())
        return fail(EINVAL, source_name + ": empty manifest");
    if (bytes.size() > kManifestMaxBytes)
        return fail(EINVAL, source_name + ": manifest is " + std::to_string(bytes.size()) + " bytes, more than the " +
                                std::to_string(kManifestMaxBytes) + " allowed");
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return Parser(text, source_name).run();
}

std::string serialize_manifest(const Manifest& manifest) {
    std::string out;
    out.reserve(64 + manifest.images.size() * 160);
    out += kMagic;
    out += ' ';
    out += std::to_string(manifest.format);
    out += "\nversion ";
    out += std::to_string(manifest.version);
    out += "\ncreated ";
    out += manifest.created;
    out += '\n';
    for (const ManifestImage& image : manifest.images) {
        out += "image ";
        out += image.name;
        out += ' ';
        out += std::to_string(image.size);
        out += ' ';
        out += image.sha256;
        out += '\n';
        for (const std::string& program : image.programs) {
            out += "program ";
            out += image.name;
            out += ' ';
            out += program;
            out += '\n';
        }
        for (const std::string& map : image.maps) {
            out += "map ";
            out += image.name;
            out += ' ';
            out += map;
            out += '\n';
        }
    }
    return out;
}

Result<void> validate_manifest(const Manifest& manifest) {
    const auto invalid = [](const std::string& reason) { return fail(EINVAL, "manifest: " + reason); };

    if (manifest.format != kManifestFormat)
        return invalid("unsupported manifest format " + std::to_string(manifest.format) +
                       ": this bpfwarden writes format " + std::to_string(kManifestFormat));
    if (Problem problem = version_problem(manifest.version))
        return invalid(*problem);
    if (Problem problem = created_problem(manifest.created))
        return invalid(*problem);
    if (manifest.images.empty())
        return invalid("no images: a manifest lists at least one");
    if (manifest.images.size() > kManifestMaxImages)
        return invalid("more than " + std::to_string(kManifestMaxImages) + " images");

    std::set<std::string_view> image_names;
    for (const ManifestImage& image : manifest.images) {
        if (Problem problem = name_problem(NameKind::image, image.name))
            return invalid(*problem);
        if (!image_names.insert(image.name).second)
            return invalid("duplicate image " + quote(image.name));
        if (Problem problem = size_problem(image.name, image.size))
            return invalid(*problem);
        if (Problem problem = sha256_problem("image " + quote(image.name), image.sha256))
            return invalid(*problem);
        if (image.programs.empty() && image.maps.empty())
            return invalid(empty_image_problem(image.name));

        for (const NameKind kind : {NameKind::program, NameKind::map}) {
            const bool is_program = kind == NameKind::program;
            const auto& names = is_program ? image.programs : image.maps;
            const size_t max = is_program ? kManifestMaxProgramsPerImage : kManifestMaxMapsPerImage;
            if (names.size() > max)
                return invalid(count_problem(image.name, is_program ? "programs" : "maps", max));
            std::set<std::string_view> seen;
            for (const std::string& name : names) {
                if (Problem problem = name_problem(kind, name, image.name))
                    return invalid(*problem);
                if (!seen.insert(name).second)
                    return invalid(std::string("duplicate ") + (is_program ? "program " : "map ") + quote(name) +
                                   " in image " + quote(image.name));
            }
        }
    }

    // Every field is valid, so the text has the shape the parser reads; only
    // its length is left to check.
    if (const size_t bytes = serialize_manifest(manifest).size(); bytes > kManifestMaxBytes)
        return invalid("the manifest would be " + std::to_string(bytes) + " bytes, more than the " +
                       std::to_string(kManifestMaxBytes) + " allowed");
    return {};
}

std::string format_rfc3339_utc(std::time_t t) {
    constexpr int64_t kFirst = 0;            // 1970-01-01T00:00:00Z
    constexpr int64_t kLast = 253402300799;  // 9999-12-31T23:59:59Z
    const int64_t seconds = std::clamp<int64_t>(static_cast<int64_t>(t), kFirst, kLast);
    const int64_t days = seconds / 86400;
    const int64_t second_of_day = seconds % 86400;

    // Days since the epoch to a proleptic Gregorian date (Howard Hinnant's
    // civil_from_days), with no dependency on TZ or the C library's gmtime.
    const int64_t shifted = days + 719468;  // days since 0000-03-01
    const int64_t era = shifted / 146097;
    const int64_t day_of_era = shifted - era * 146097;
    const int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    const int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    const int64_t month_index = (5 * day_of_year + 2) / 153;  // 0 = March
    const int64_t day = day_of_year - (153 * month_index + 2) / 5 + 1;
    const int64_t month = month_index < 10 ? month_index + 3 : month_index - 9;
    const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);

    char text[64];  // the compiler cannot see the clamp: room for any int64 fields
    std::snprintf(text, sizeof text, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", static_cast<long long>(year),
                  static_cast<long long>(month), static_cast<long long>(day),
                  static_cast<long long>(second_of_day / 3600), static_cast<long long>(second_of_day / 60 % 60),
                  static_cast<long long>(second_of_day % 60));
    return text;
}

}  // namespace bpfwarden
