#include "bus_connection.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cstring>

#include "support/log.h"

namespace bpfwarden::dbus {

namespace {

std::string describe_request_name_failure(int r, const std::string& name) {
    switch (-r) {
    case EEXIST:
    case EALREADY: return "'" + name + "' is already owned by another process (is another instance running?)";
    case EACCES:
    case EPERM:
        return "the bus policy does not let this process own '" + name +
               "' (install units/org.bpfwarden.conf as /usr/share/dbus-1/system.d/org.bpfwarden.conf and run as root)";
    default: return "request name '" + name + "': " + std::strerror(-r);
    }
}

}  // namespace

BusConnection::BusConnection(boost::asio::io_context& io, std::string well_known_name, StatusHandler on_status,
                             std::chrono::milliseconds retry_interval)
    : io_(io),
      name_(std::move(well_known_name)),
      on_status_(std::move(on_status)),
      retry_interval_(retry_interval),
      fd_(io),
      timeout_(io),
      retry_(io) {}

BusConnection::~BusConnection() {
    retry_.cancel();
    if (bus_) {
        // Flush what is queued (a last PropertiesChanged, say) before leaving.
        fd_.cancel();
        fd_.close();
        timeout_.cancel();
        sd_bus_flush_close_unref(bus_);
        bus_ = nullptr;
    }
}

void BusConnection::add_object(Object object) { objects_.push_back(std::move(object)); }

void BusConnection::start() {
    if (auto connected = connect(); !connected)
        fail_and_retry(Status::Unavailable, connected.error().message());
}

Result<void> BusConnection::connect() {
    sd_bus* bus = nullptr;
    // sd_bus_open_system() honours DBUS_SYSTEM_BUS_ADDRESS.
    int r = sd_bus_open_system_with_description(&bus, name_.c_str());
    if (r < 0)
        return fail_system(-r, "connect to the system bus");
    auto close_bus = [&] { sd_bus_close_unref(bus); };
    for (const auto& object : objects_) {
        // Floating slots: they live as long as this bus connection.
        r = sd_bus_add_object_vtable(bus, nullptr, object.path.c_str(), object.interface.c_str(), object.vtable,
                                     object.userdata);
        if (r < 0) {
            close_bus();
            return fail_system(-r, "register " + object.interface + " at " + object.path);
        }
    }
    // Objects first, then the name: whoever sees the name appear can call at once.
    r = sd_bus_request_name(bus, name_.c_str(), 0);
    if (r < 0) {
        close_bus();
        return fail(0, describe_request_name_failure(r, name_));
    }
    int fd = sd_bus_get_fd(bus);
    if (fd < 0) {
        close_bus();
        return fail_system(-fd, "bus connection fd");
    }
    // A duplicate, so that Asio never closes sd-bus's own descriptor.
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dup_fd < 0) {
        Error error = Error::from_errno("duplicate bus fd");
        close_bus();
        return std::unexpected(error);
    }
    boost::system::error_code ec;
    fd_.assign(dup_fd, ec);
    if (ec) {
        ::close(dup_fd);
        close_bus();
        return fail_system(ec.value(), "watch bus fd");
    }
    bus_ = bus;
    ++generation_;
    reading_ = writing_ = kicked_ = false;
    reported_unavailable_ = false;
    const char* unique = nullptr;
    sd_bus_get_unique_name(bus_, &unique);
    if (on_status_)
        on_status_(Status::Connected,
                   "serving " + name_ + " on the system bus" + (unique ? std::string(" (") + unique + ")" : ""));
    // Messages may have arrived while the name request waited.
    kick();
    return {};
}

void BusConnection::disconnect() {
    if (!bus_)
        return;
    ++generation_;
    boost::system::error_code ignored;
    fd_.cancel(ignored);
    fd_.close(ignored);
    timeout_.cancel();
    sd_bus_close_unref(bus_);
    bus_ = nullptr;
    reading_ = writing_ = kicked_ = false;
}

void BusConnection::fail_and_retry(Status status, const std::string& detail) {
    disconnect();
    // Reported once per outage: a host without a system bus gets one line,
    // not one per retry.
    if (on_status_ && (status == Status::Lost || !reported_unavailable_))
        on_status_(status, detail);
    reported_unavailable_ = true;
    schedule_retry();
}

void BusConnection::schedule_retry() {
    retry_.expires_after(retry_interval_);
    retry_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || bus_)
            return;
        if (auto connected = connect(); !connected)
            fail_and_retry(Status::Unavailable, connected.error().message());
    });
}

void BusConnection::process() {
    if (!bus_)
        return;
    // Until sd-bus has nothing left to do: the socket is then drained, so
    // waiting for the next readiness event loses nothing.
    for (;;) {
        int r = sd_bus_process(bus_, nullptr);
        if (r < 0) {
            fail_and_retry(Status::Lost, std::string("connection to the system bus lost: ") + std::strerror(-r));
            return;
        }
        if (r == 0)
            break;
    }
    arm();
}

void BusConnection::arm() {
    int events = sd_bus_get_events(bus_);
    if (events < 0) {
        fail_and_retry(Status::Lost, std::string("connection to the system bus lost: ") + std::strerror(-events));
        return;
    }
    uint64_t generation = generation_;
    if ((events & POLLIN) && !reading_) {
        reading_ = true;
        fd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       [this, generation](const boost::system::error_code& ec) {
                           if (ec || generation != generation_)
                               return;
                           reading_ = false;
                           process();
                       });
    }
    if ((events & POLLOUT) && !writing_) {
        writing_ = true;
        fd_.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                       [this, generation](const boost::system::error_code& ec) {
                           if (ec || generation != generation_)
                               return;
                           writing_ = false;
                           process();
                       });
    }
    uint64_t usec = UINT64_MAX;
    if (sd_bus_get_timeout(bus_, &usec) >= 0 && usec != UINT64_MAX) {
        // An absolute CLOCK_MONOTONIC time, steady_clock's clock on Linux.
        timeout_.expires_at(std::chrono::steady_clock::time_point(std::chrono::microseconds(usec)));
        timeout_.async_wait([this, generation](const boost::system::error_code& ec) {
            if (ec || generation != generation_)
                return;
            process();
        });
    } else {
        timeout_.cancel();
    }
}

void BusConnection::kick() {
    if (kicked_)
        return;
    kicked_ = true;
    uint64_t generation = generation_;
    boost::asio::post(io_, [this, generation] {
        if (generation != generation_)
            return;
        kicked_ = false;
        process();
    });
}

Result<BusMessage> BusConnection::new_signal(const char* path, const char* interface, const char* member) {
    if (!bus_)
        return fail(ENOTCONN, "not connected to the system bus");
    sd_bus_message* message = nullptr;
    int r = sd_bus_message_new_signal(bus_, &message, path, interface, member);
    if (r < 0)
        return fail_system(-r, std::string("create signal ") + member);
    return BusMessage(message);
}

Result<void> BusConnection::send(sd_bus_message* message) {
    if (!bus_)
        return fail(ENOTCONN, "not connected to the system bus");
    int r = sd_bus_send(bus_, message, nullptr);
    if (r < 0)
        return fail_system(-r, "send message");
    kick();
    return {};
}

Result<void> BusConnection::emit_properties_changed(const char* path, const char* interface,
                                                    const std::vector<const char*>& names) {
    if (!bus_)
        return fail(ENOTCONN, "not connected to the system bus");
    if (names.empty())
        return {};
    std::vector<char*> list;
    for (const char* name : names)
        list.push_back(const_cast<char*>(name));
    list.push_back(nullptr);
    int r = sd_bus_emit_properties_changed_strv(bus_, path, interface, list.data());
    if (r < 0)
        return fail_system(-r, std::string("emit PropertiesChanged on ") + interface);
    kick();
    return {};
}

BusConnection::StatusHandler BusConnection::logger(std::string unaffected) {
    return [unaffected = std::move(unaffected)](Status status, const std::string& detail) {
        log(status == Status::Connected ? LogLevel::Notice : LogLevel::Warning, describe(status, detail, unaffected));
    };
}

std::string BusConnection::describe(Status status, const std::string& detail, std::string_view unaffected) {
    const std::string still = std::string(unaffected) + " is unaffected";
    switch (status) {
    case Status::Connected: return "D-Bus: " + detail;
    case Status::Unavailable: return "D-Bus: not available (" + detail + "); running without it and retrying, " + still;
    case Status::Lost: return "D-Bus: " + detail + "; reconnecting, " + still;
    }
    return "D-Bus: " + detail;
}

}  // namespace bpfwarden::dbus
