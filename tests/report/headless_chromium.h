#pragma once
// Headless Chromium for the report tests (tests/report, tests/lab): runs a page with a
// fresh profile and no way out to the network, and reads back what the page's status element and
// console said.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/files.h"

namespace sinklab::test {

inline bool have_chromium() { return std::filesystem::exists("/usr/bin/chromium"); }

struct ChromiumRun {
    int status = -1;
    std::string out;
    std::string err;
};

// Runs Chromium on the page with `args` (--dump-dom or --screenshot=...); console messages are
// logged to stderr. --no-proxy-server is not given and an unroutable proxy takes every request, so
// nothing leaves the machine; the page's Content-Security-Policy reports any attempt on the console.
inline ChromiumRun run_chromium(const std::filesystem::path& page, const std::string& args, const std::string& tag) {
    const std::filesystem::path dir = page.parent_path();
    const std::filesystem::path out = dir / (tag + ".out"), err = dir / (tag + ".err");
    const std::string command = fmt::format(
        "timeout 60 /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
        "--disable-background-networking --disable-component-update --disable-sync "
        "--proxy-server='http://127.0.0.1:9' --proxy-bypass-list='<-loopback>' --user-data-dir='{}' "
        "--enable-logging=stderr --v=0 {} 'file://{}' > '{}' 2> '{}'",
        (dir / ("profile-" + tag)).string(), args, page.string(), out.string(), err.string());
    ChromiumRun result;
    result.status = std::system(command.c_str());
    result.out = read_text_file(out, "test");
    result.err = read_text_file(err, "test");
    return result;
}

// The value of attribute `name` on the dumped <div id="report-status" ...> element.
inline std::string status_attribute(const std::string& dom, const std::string& name) {
    const size_t at = dom.find("<div id=\"report-status\"");
    if (at == std::string::npos) return "(no #report-status)";
    const std::string element = dom.substr(at, dom.find('>', at) - at);
    const size_t value = element.find(" " + name + "=\"");
    if (value == std::string::npos) return "(no " + name + ")";
    const size_t start = value + name.size() + 3;
    return element.substr(start, element.find('"', start) - start);
}

// Console lines about the page. The page itself logs nothing, so any is a failure: uncaught errors
// ("Uncaught ..."), console.error calls, and Content-Security-Policy violations (a network load)
// all appear as "...:CONSOLE..." lines (INFO:CONSOLE or ERROR:CONSOLE, by Chromium version).
inline std::vector<std::string> console_messages(const std::string& log, const std::string& page_name) {
    std::vector<std::string> messages;
    size_t start = 0;
    while (start < log.size()) {
        size_t end = log.find('\n', start);
        if (end == std::string::npos) end = log.size();
        const std::string line = log.substr(start, end - start);
        const bool console = line.find(":CONSOLE") != std::string::npos || line.find("Uncaught") != std::string::npos;
        if (console && line.find(page_name) != std::string::npos) messages.push_back(line);
        start = end + 1;
    }
    return messages;
}

// tests/report/browser_check.mjs on `page`: Chromium driven by playwright-core (scripts/setup.sh
// installs both) with the network cut. `ran` is false when node or the npm packages are missing
// (the output says which); `result` is the script's JSON line (ok, failures, figures, marks,
// tooltip, images, broken, console, requests).
struct BrowserCheck {
    bool ran = false;
    std::string output;
    nlohmann::json result;
};

inline BrowserCheck browser_check(const std::filesystem::path& page, const std::filesystem::path& screenshot) {
    BrowserCheck check;
    const std::filesystem::path dir = page.parent_path();
    const std::filesystem::path out = dir / "browser-check.out";
    const std::string command = fmt::format(
        "timeout 180 node '{}/tests/report/browser_check.mjs' '{}' '{}' '{}' > '{}' 2>&1", SINKLAB_SOURCE_DIR,
        page.string(), screenshot.string(), (dir / "browser-profile").string(), out.string());
    const int status = std::system(command.c_str());
    check.output = read_text_file(out, "test");
    const size_t line = check.output.rfind("{\"ok\"");
    if (line == std::string::npos) {
        check.output = fmt::format("browser_check.mjs gave no result (exit status {}; is node installed, and "
                                   "scripts/npm/node_modules? run scripts/setup.sh):\n{}",
                                   status, check.output);
        return check;
    }
    check.result = nlohmann::json::parse(check.output.substr(line, check.output.find('\n', line) - line), nullptr, false);
    check.ran = check.result.is_object();
    return check;
}

}  // namespace sinklab::test
