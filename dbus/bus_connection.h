// One connection to the system bus, driven from a Boost.Asio loop, owning one
// well-known name and the objects served under it.
//
// sd-bus says what it waits for (sd_bus_get_fd/get_events/get_timeout); the
// connection turns that into an async_wait on the bus fd and a steady_timer,
// and runs sd_bus_process() until it has nothing left to do each time either
// fires. Nothing blocks the loop except the name request at connect time (a
// local round trip to the bus daemon).
//
// The bus is optional for the services: enforcement must not depend on it.
// When the system bus is missing (no dbus-daemon on a CI host, a service
// started before dbus.service) or goes away, the connection reports it once
// through the status handler and retries every `retry_interval`; objects are
// registered again on every new connection. Honours DBUS_SYSTEM_BUS_ADDRESS
// (sd_bus_open_system), which is how tests point it at a private bus.
//
// Library code: reports through the status handler, never logs.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <systemd/sd-bus.h>
#include <vector>

#include "support/error.h"

namespace bpfwarden::dbus {

struct BusMessageUnref {
    void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using BusMessage = std::unique_ptr<sd_bus_message, BusMessageUnref>;

class BusConnection {
public:
    enum class Status {
        Connected,    // name acquired; detail: "connected to the system bus as <name>"
        Unavailable,  // could not connect or own the name; detail says why; retrying
        Lost,         // an established connection broke; retrying
    };
    using StatusHandler = std::function<void(Status, const std::string& detail)>;

    // One log line for a status change; `unaffected` names what keeps working
    // without the bus ("enforcement"). Connected is news, the others warnings.
    static std::string describe(Status status, const std::string& detail, std::string_view unaffected);
    // A StatusHandler that logs describe()'s line: Notice when connected,
    // Warning otherwise.
    static StatusHandler logger(std::string unaffected);

    struct Object {
        std::string path;
        std::string interface;
        const sd_bus_vtable* vtable;  // static storage
        void* userdata;               // passed to every handler; must outlive the connection
    };

    BusConnection(boost::asio::io_context& io, std::string well_known_name, StatusHandler on_status,
                  std::chrono::milliseconds retry_interval = std::chrono::seconds(10));
    ~BusConnection();
    BusConnection(const BusConnection&) = delete;
    BusConnection& operator=(const BusConnection&) = delete;

    // Before start(): objects to serve on every connection.
    void add_object(Object object);

    // Connects now (and, on failure, keeps retrying from the loop).
    void start();

    bool connected() const { return bus_ != nullptr; }
    const std::string& name() const { return name_; }

    // A new signal message to fill with sd_bus_message_append(); ENOTCONN when
    // not connected (callers usually just skip the signal then).
    Result<BusMessage> new_signal(const char* path, const char* interface, const char* member);
    // Sends a filled message (signal) and makes sure it is flushed from the loop.
    Result<void> send(sd_bus_message* message);
    // org.freedesktop.DBus.Properties.PropertiesChanged for `names` (their
    // current values, read through the vtable's getters).
    Result<void> emit_properties_changed(const char* path, const char* interface,
                                         const std::vector<const char*>& names);

private:
    Result<void> connect();
    void disconnect();
    void fail_and_retry(Status status, const std::string& detail);
    void schedule_retry();
    void process();
    void arm();
    void kick();

    boost::asio::io_context& io_;
    std::string name_;
    StatusHandler on_status_;
    std::chrono::milliseconds retry_interval_;
    std::vector<Object> objects_;

    sd_bus* bus_ = nullptr;
    boost::asio::posix::stream_descriptor fd_;
    boost::asio::steady_timer timeout_;
    boost::asio::steady_timer retry_;
    // Bumped on every (dis)connect so that handlers of an earlier connection
    // do nothing.
    uint64_t generation_ = 0;
    bool reading_ = false, writing_ = false, kicked_ = false;
    bool reported_unavailable_ = false;
};

}  // namespace bpfwarden::dbus
