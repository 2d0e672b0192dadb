#include "watchdog_interface.h"

#include "names.h"
#include "support/text.h"
#include "utf8.h"

namespace bpfwarden::dbus {

namespace {

WatchdogObject& object_of(void* userdata) { return *static_cast<WatchdogObject*>(userdata); }

int append_string(sd_bus_message* reply, std::string_view text) {
    std::string safe = to_bus_string(text);
    return sd_bus_message_append_basic(reply, 's', safe.c_str());
}

int append_reasons(sd_bus_message* reply, const std::vector<std::string>& reasons) {
    int r = sd_bus_message_open_container(reply, 'a', "s");
    for (size_t i = 0; r >= 0 && i < reasons.size(); ++i)
        r = append_string(reply, reasons[i]);
    return r < 0 ? r : sd_bus_message_close_container(reply);
}

int append_u64(sd_bus_message* reply, uint64_t value) { return sd_bus_message_append_basic(reply, 't', &value); }

// One getter for every property: the status is one snapshot anyway.
int get_property(sd_bus*, const char*, const char*, const char* property, sd_bus_message* reply, void* userdata,
                 sd_bus_error*) {
    WatchdogBackend& backend = object_of(userdata).backend();
    std::string_view name = property;
    if (name == "Version")
        return append_string(reply, backend.version());
    WatchdogStatus status = backend.status();
    if (name == "Healthy") {
        int healthy = status.healthy;
        return sd_bus_message_append_basic(reply, 'b', &healthy);
    }
    if (name == "Reasons")
        return append_reasons(reply, status.reasons);
    if (name == "Mode")
        return append_string(reply, status.mode);
    if (name == "ModeReason")
        return append_string(reply, status.mode_reason);
    if (name == "ImageSetVersion")
        return append_u64(reply, status.image_set_version);
    if (name == "CheckInterval")
        return append_u64(reply, status.check_interval_usec);
    if (name == "Checks")
        return append_u64(reply, status.checks);
    if (name == "LastCheck")
        return append_u64(reply, status.last_check_usec);
    if (name == "LastTrigger")
        return append_string(reply, status.last_trigger);
    if (name == "LastCheckDuration")
        return append_u64(reply, status.last_check_duration_usec);
    if (name == "HealsByKind") {
        int r = sd_bus_message_open_container(reply, 'a', "{st}");
        for (const auto& [kind, heals] : status.heals_by_kind)
            if (r >= 0)
                r = sd_bus_message_append(reply, "{st}", kind.c_str(), heals);
        return r < 0 ? r : sd_bus_message_close_container(reply);
    }
    if (name == "HealCount")
        return append_u64(reply, status.heal_count);
    if (name == "LastHeal") {
        std::string reason = to_bus_string(status.last_heal_reason);
        return sd_bus_message_append(reply, "(st)", reason.c_str(), status.last_heal_usec);
    }
    if (name == "Programs") {
        int r = sd_bus_message_open_container(reply, 'a', "(ssuss)");
        for (const auto& program : status.programs) {
            if (r < 0)
                break;
            std::string id = to_bus_string(program.program), hook = to_bus_string(program.hook),
                        tag = to_bus_string(program.tag), state = to_bus_string(program.status);
            r = sd_bus_message_append(reply, "(ssuss)", id.c_str(), hook.c_str(), program.prog_id, tag.c_str(),
                                      state.c_str());
        }
        return r < 0 ? r : sd_bus_message_close_container(reply);
    }
    return -ENOENT;
}

int method_check_now(sd_bus_message* message, void* userdata, sd_bus_error* error) {
    auto caller = require_authorized(message, "CheckNow", kCheckAction);
    if (!caller)
        return set_bus_error(error, caller.error());
    auto status = object_of(userdata).backend().check_now(*caller);
    if (!status)
        return set_bus_error(error, status.error());
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(message, &raw);
    if (r < 0)
        return r;
    BusMessage reply(raw);
    int healthy = status->healthy;
    r = sd_bus_message_append_basic(raw, 'b', &healthy);
    if (r >= 0)
        r = append_reasons(raw, status->reasons);
    if (r < 0)
        return r;
    return sd_bus_send(nullptr, raw, nullptr);
}

constexpr uint64_t kConst = SD_BUS_VTABLE_PROPERTY_CONST;
constexpr uint64_t kEmitsChange = SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE;
constexpr uint64_t kLive = 0;                             // changes with every check: read it, no signal
constexpr uint64_t kMethod = SD_BUS_VTABLE_UNPRIVILEGED;  // checked in authorization.h

const sd_bus_vtable kWatchdogVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Version", "s", get_property, 0, kConst),
    SD_BUS_PROPERTY("Healthy", "b", get_property, 0, kEmitsChange),
    SD_BUS_PROPERTY("Reasons", "as", get_property, 0, kEmitsChange),
    SD_BUS_PROPERTY("Mode", "s", get_property, 0, kConst),
    SD_BUS_PROPERTY("ModeReason", "s", get_property, 0, kConst),
    SD_BUS_PROPERTY("ImageSetVersion", "t", get_property, 0, kConst),
    SD_BUS_PROPERTY("CheckInterval", "t", get_property, 0, kConst),
    SD_BUS_PROPERTY("Checks", "t", get_property, 0, kLive),
    SD_BUS_PROPERTY("LastCheck", "t", get_property, 0, kLive),
    SD_BUS_PROPERTY("LastTrigger", "s", get_property, 0, kLive),
    SD_BUS_PROPERTY("LastCheckDuration", "t", get_property, 0, kLive),
    SD_BUS_PROPERTY("HealCount", "t", get_property, 0, kEmitsChange),
    SD_BUS_PROPERTY("LastHeal", "(st)", get_property, 0, kEmitsChange),
    SD_BUS_PROPERTY("HealsByKind", "a{st}", get_property, 0, kEmitsChange),
    SD_BUS_PROPERTY("Programs", "a(ssuss)", get_property, 0, kEmitsChange),
    SD_BUS_METHOD_WITH_ARGS("CheckNow", SD_BUS_NO_ARGS, SD_BUS_RESULT("b", healthy, "as", reasons), method_check_now,
                            kMethod),
    SD_BUS_SIGNAL_WITH_ARGS("Healed", SD_BUS_ARGS("s", reason, "t", duration_usec, "t", heal_count), 0),
    SD_BUS_SIGNAL_WITH_ARGS("UnknownProgram", SD_BUS_ARGS("u", id, "s", name, "s", type, "s", tag, "s", detail), 0),
    SD_BUS_VTABLE_END,
};

bool same_programs(const std::vector<WatchdogProgram>& a, const std::vector<WatchdogProgram>& b) {
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].program != b[i].program || a[i].hook != b[i].hook || a[i].prog_id != b[i].prog_id ||
            a[i].tag != b[i].tag || a[i].status != b[i].status)
            return false;
    return true;
}

}  // namespace

WatchdogObject::WatchdogObject(BusConnection& bus, WatchdogBackend& backend)
    : bus_(bus), backend_(backend), published_(backend.status()) {
    bus_.add_object({kWatchdogPath, kWatchdogInterface, kWatchdogVtable, this});
}

void WatchdogObject::publish() {
    WatchdogStatus now = backend_.status();
    WatchdogStatus before = std::move(published_);
    published_ = now;
    if (!bus_.connected())
        return;
    std::vector<const char*> changed;
    if (now.healthy != before.healthy)
        changed.push_back("Healthy");
    if (now.reasons != before.reasons)
        changed.push_back("Reasons");
    if (now.heal_count != before.heal_count)
        changed.push_back("HealCount");
    if (now.heals_by_kind != before.heals_by_kind)
        changed.push_back("HealsByKind");
    if (now.last_heal_reason != before.last_heal_reason || now.last_heal_usec != before.last_heal_usec)
        changed.push_back("LastHeal");
    if (!same_programs(now.programs, before.programs))
        changed.push_back("Programs");
    (void)bus_.emit_properties_changed(kWatchdogPath, kWatchdogInterface, changed);

    if (now.heal_count > before.heal_count) {
        auto signal = bus_.new_signal(kWatchdogPath, kWatchdogInterface, "Healed");
        if (!signal)
            return;
        std::string reason = to_bus_string(now.last_heal_reason);
        if (sd_bus_message_append(signal->get(), "stt", reason.c_str(), now.last_heal_usec, now.heal_count) < 0)
            return;
        (void)bus_.send(signal->get());
    }
}

void WatchdogObject::unknown_program(uint32_t id, const std::string& name, const std::string& type,
                                     const std::string& tag, const std::string& detail) {
    if (!bus_.connected())
        return;
    auto signal = bus_.new_signal(kWatchdogPath, kWatchdogInterface, "UnknownProgram");
    if (!signal)
        return;
    // A program's name is whatever its loader chose: escaped like the event fields.
    std::string safe_name = sanitize_field(name, 64), safe_type = to_bus_string(type), safe_tag = to_bus_string(tag),
                safe_detail = to_bus_string(detail);
    if (sd_bus_message_append(signal->get(), "ussss", id, safe_name.c_str(), safe_type.c_str(), safe_tag.c_str(),
                              safe_detail.c_str()) < 0)
        return;
    (void)bus_.send(signal->get());
}

}  // namespace bpfwarden::dbus
