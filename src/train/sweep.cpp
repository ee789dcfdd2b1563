#include "train/sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include <toml++/toml.h>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "train/data.h"
#include "train/trainer.h"

namespace sinklab {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLogFile = "train_log.jsonl";

// A table's entries in file order (toml++ keeps them sorted by key).
std::vector<std::pair<std::string, const toml::node*>> entries_in_file_order(const toml::table& table) {
    std::vector<std::pair<std::string, const toml::node*>> entries;
    for (const auto& [key, node] : table) entries.emplace_back(std::string(key.str()), &node);
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        const toml::source_position pa = a.second->source().begin, pb = b.second->source().begin;
        return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
    });
    return entries;
}

// The text a TOML value stands for after --KEY on the command line (a list of integers: "0,1,2").
std::string setting_text(const toml::node& node, const std::string& where) {
    if (node.is_string()) return *node.value<std::string>();
    if (node.is_integer()) return std::to_string(*node.value<int64_t>());
    if (node.is_floating_point()) return fmt::format("{}", *node.value<double>());
    if (node.is_boolean()) return *node.value<bool>() ? "true" : "false";
    if (const toml::array* items = node.as_array()) {
        std::string text;
        for (const auto& item : *items) {
            SINKLAB_CHECK(item.is_integer(), "sweep", "{}: expected a value or a list of integers", where);
            text += (text.empty() ? "" : ",") + std::to_string(*item.value<int64_t>());
        }
        return text;
    }
    fail("sweep", "{}: expected a string, a number, a boolean or a list of integers", where);
}

// The key as train_settings() spells it; throws naming `where` when no setting has it.
std::string setting_key(const std::string& key, const std::string& where) {
    const Setting* setting = find_setting(key);
    SINKLAB_CHECK(setting, "sweep", "{}: unknown key '{}' (the keys are the flags of `sinklab train --help`, without --)",
                  where, key);
    return setting->key;
}

// [base]: settings, with optional [base.model] / [base.train] tables as in a `sinklab train` file.
std::map<std::string, std::string> read_base(const toml::table& base, const std::string& where) {
    std::map<std::string, std::string> values;
    for (const auto& [key, node] : entries_in_file_order(base)) {
        if (const toml::table* group = node->as_table()) {
            SINKLAB_CHECK(key == "model" || key == "train", "sweep",
                          "{}: unexpected table [base.{}] (settings go in [base], or in [base.model] / [base.train])",
                          where, key);
            for (const auto& [k, v] : read_base(*group, where + "." + key)) values[k] = v;
            continue;
        }
        values[setting_key(key, where)] = setting_text(*node, where + " " + key);
    }
    return values;
}

struct Axis {
    std::string key;
    std::vector<std::string> values;
};

// The runs of [axes], made one at a time from the run's index: a grid's combinations are counted
// (and refused beyond kMaxSweepRuns) before any is made.
struct AxesPlan {
    bool grid = true;
    std::vector<Axis> axes;
    size_t count = 0;

    SettingValues run(size_t index) const {
        SettingValues values;
        if (!grid) {
            for (const Axis& axis : axes) values.emplace_back(axis.key, axis.values[index]);
            return values;
        }
        // Mixed radix, the first axis varying slowest.
        std::vector<size_t> digits(axes.size());
        for (size_t a = axes.size(); a-- > 0;) {
            digits[a] = index % axes[a].values.size();
            index /= axes[a].values.size();
        }
        for (size_t a = 0; a < axes.size(); ++a) values.emplace_back(axes[a].key, axes[a].values[digits[a]]);
        return values;
    }
};

void check_run_count(size_t count, const std::string& where, const std::string& how) {
    SINKLAB_CHECK(count <= kMaxSweepRuns, "sweep", "{}: {} runs ({}), more than a sweep's limit of {}; split it into "
                                                   "several sweeps",
                  where, count, how, kMaxSweepRuns);
}

// [axes]: mode = "grid" (every combination, the first axis varying slowest) or "list" (the i-th
// value of every axis together), and key = [values...].
AxesPlan read_axes(const toml::table& axes_table, const std::string& file) {
    const std::string where = file + " [axes]";
    std::string mode = "grid";
    std::vector<Axis> axes;
    for (const auto& [key, node] : entries_in_file_order(axes_table)) {
        if (key == "mode") {
            const auto value = node->value<std::string>();
            SINKLAB_CHECK(value && (*value == "grid" || *value == "list"), "sweep",
                          "{}: mode must be \"grid\" (every combination) or \"list\" (the axes zipped)", where);
            mode = *value;
            continue;
        }
        Axis axis{setting_key(key, where), {}};
        const toml::array* values = node->as_array();
        SINKLAB_CHECK(values, "sweep", "{}: {} must be a list of values (e.g. lr = [1e-3, 3e-3])", where, key);
        SINKLAB_CHECK(!values->empty(), "sweep", "{}: {} has no values", where, key);
        for (const auto& value : *values) axis.values.push_back(setting_text(value, where + " " + key));
        SINKLAB_CHECK(std::none_of(axes.begin(), axes.end(), [&](const Axis& a) { return a.key == axis.key; }), "sweep",
                      "{}: the axis '{}' is given twice", where, axis.key);
        axes.push_back(std::move(axis));
    }
    SINKLAB_CHECK(!axes.empty(), "sweep", "{}: no axis (add key = [values...], e.g. lr = [1e-3, 3e-3])", where);
    AxesPlan plan;
    plan.grid = mode == "grid";
    if (!plan.grid) {
        for (const Axis& axis : axes)
            SINKLAB_CHECK(axis.values.size() == axes.front().values.size(), "sweep",
                          "{}: mode = \"list\" zips the axes, which need equal lengths: {} has {} values, {} has {}",
                          where, axes.front().key, axes.front().values.size(), axis.key, axis.values.size());
        plan.count = axes.front().values.size();
        check_run_count(plan.count, where, "the length of the zipped axes");
    } else {
        std::string sizes;
        plan.count = 1;
        for (const Axis& axis : axes) {
            sizes += (sizes.empty() ? "" : " x ") + std::to_string(axis.values.size());
            // Saturates rather than overflows (past the limit it is refused anyway).
            if (__builtin_mul_overflow(plan.count, axis.values.size(), &plan.count)) plan.count = SIZE_MAX;
        }
        check_run_count(plan.count, where, "a grid of " + sizes + " values");
    }
    plan.axes = std::move(axes);
    return plan;
}

// [[runs]]: one table of settings per run.
std::vector<SettingValues> read_run_tables(const toml::array& tables, const std::string& file) {
    check_run_count(tables.size(), file + " [[runs]]", "one per table");
    std::vector<SettingValues> runs;
    for (size_t i = 0; i < tables.size(); ++i) {
        const std::string where = fmt::format("{} [[runs]] #{}", file, i + 1);
        const toml::table* table = tables[i].as_table();
        SINKLAB_CHECK(table, "sweep", "{}: expected a table of settings", where);
        SettingValues run;
        for (const auto& [key, node] : entries_in_file_order(*table)) {
            SINKLAB_CHECK(!node->is_table(), "sweep", "{}: unexpected table '{}' (a run is a flat table of settings)",
                          where, key);
            run.emplace_back(setting_key(key, where), setting_text(*node, where + " " + key));
        }
        runs.push_back(std::move(run));
    }
    SINKLAB_CHECK(!runs.empty(), "sweep", "{}: [[runs]] is empty", file);
    return runs;
}

// The lines of a run's log: the start line's configuration and parameter count, and the line that
// ended the run (the final evaluation, or where it diverged).
struct RunLog {
    std::optional<nlohmann::json> config;
    std::optional<long> params;
    std::optional<nlohmann::json> end;
};

RunLog read_run_log(const fs::path& run_dir) {
    RunLog log;
    std::ifstream in(run_dir / kLogFile);
    std::string line;
    while (std::getline(in, line)) {
        const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_object()) continue;  // a line cut short by a kill
        if (j.value("event", "") == "start") {
            log.config = j.value("config", nlohmann::json());
            if (j.contains("params")) log.params = j["params"].get<long>();
        }
        if (j.value("final", false) || j.value("diverged", false)) log.end = j;
    }
    return log;
}

std::optional<double> number_at(const nlohmann::json& j, const char* key) {
    if (!j.contains(key) || !j[key].is_number()) return std::nullopt;
    return j[key].get<double>();
}

// Where a run stands before the sweep trains it.
enum class RunStart { finished, resume, fresh };

RunStart survey_run(const SweepRun& run, const fs::path& dir) {
    const RunLog log = read_run_log(dir);
    std::error_code ec;
    const RunStart start = log.end ? RunStart::finished : fs::exists(dir / "checkpoint", ec) ? RunStart::resume
                                                                                             : RunStart::fresh;
    // A run that would start over anyway may have had other settings; one to keep or continue may not.
    if (start != RunStart::fresh && log.config) {
        const nlohmann::json planned = nlohmann::json::parse(run.config.to_json().dump());
        const nlohmann::json patch = nlohmann::json::diff(*log.config, planned);
        if (!patch.empty()) {
            const nlohmann::json::json_pointer pointer(patch[0]["path"].get<std::string>());
            const std::string there = log.config->contains(pointer) ? log.config->at(pointer).dump() : "unset";
            const std::string now = planned.contains(pointer) ? planned.at(pointer).dump() : "unset";
            fail("sweep", "{}: holds a run with other settings ({}: {} there, {} in this sweep); remove the folder or "
                          "choose another --out",
                 dir.string(), pointer.to_string(), there, now);
        }
    }
    return start;
}

std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    return text;
}

// Trains (or resumes) one run on options.ranks; its row comes from the log it leaves.
RunRecord train_run(const SweepRun& run, const fs::path& dir, RunStart start, const TrainOptions& options) {
    try {
        std::unique_ptr<Trainer> trainer;
        if (start == RunStart::resume) {
            trainer = Trainer::resume(dir, options);
        } else {
            // A log without a checkpoint (the run stopped before its first one) starts over.
            trainer = std::make_unique<Trainer>(run.config, dir, options);
        }
        trainer->run();
    } catch (const AgreedError& e) {  // every rank of the run failed together: the sweep goes on
        RunRecord failed;
        failed.status = "failed: " + one_line(e.what());
        return failed;
    } catch (const std::exception& e) {
        // On several ranks, a failure of this rank alone leaves the others of its run waiting:
        // the job has to end (main aborts it; the sweep resumes when started again).
        if (options.ranks.distributed()) throw;
        RunRecord failed;
        // Sizes are checked before the large allocations; bad_alloc's own text names no cause.
        failed.status = dynamic_cast<const std::bad_alloc*>(&e) ? std::string("failed: out of memory")
                                                                : "failed: " + one_line(e.what());
        return failed;
    }
    // Every rank of the run has its record (the log is rank 0's, the numbers every rank's).
    std::optional<RunRecord> record = options.ranks.is_root() ? read_run_record(dir) : std::nullopt;
    SINKLAB_ASSERT(record.has_value() || !options.ranks.is_root());
    return record.value_or(RunRecord{});
}

// Where the sweep stands, and its lines on stderr.
class SweepProgress {
public:
    SweepProgress(size_t runs, long to_train, bool enabled) : n_(runs), to_train_(to_train), enabled_(enabled) {}

    void finished_earlier(size_t i, const SweepRun& run, const RunRecord& record) const {
        if (enabled_)
            std::fprintf(stderr, "sweep %zu/%zu: %s: finished earlier (%s)\n", i + 1, n_, run.name.c_str(),
                         record.status.c_str());
    }
    // `where`: " on rank 1", or "" on one rank.
    void starting(size_t i, const SweepRun& run, RunStart start, const std::string& where) const {
        if (!enabled_) return;
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
        const std::string eta = trained_ > 0 ? ", ETA " + format_duration(elapsed / trained_ * (to_train_ - trained_)) : "";
        std::fprintf(stderr, "sweep %zu/%zu: %s%s%s (%s elapsed%s)\n", i + 1, n_, run.name.c_str(),
                     start == RunStart::resume ? ", resuming" : "", where.c_str(), format_duration(elapsed).c_str(),
                     eta.c_str());
    }
    // `verbose`: say how every run ended (distributed: the runs' own lines are off), else only failures.
    void done(size_t i, const SweepRun& run, const RunRecord& record, bool verbose) {
        ++trained_;
        if (enabled_ && (verbose || record.status.starts_with("failed")))
            std::fprintf(stderr, "sweep %zu/%zu: %s: %s%s\n", i + 1, n_, run.name.c_str(), record.status.c_str(),
                         record.val_loss ? fmt::format(", val_loss {:.4f}", *record.val_loss).c_str() : "");
    }

private:
    size_t n_;
    long to_train_, trained_ = 0;
    bool enabled_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// The runs of one rank, in plan order.
void train_in_order(const SweepPlan& plan, const SweepOptions& options, const std::vector<RunStart>& starts,
                    std::vector<RunRecord>& records, SweepProgress& progress) {
    TrainOptions train_options;
    train_options.threads = options.threads;
    train_options.progress = options.progress;
    train_options.bucket_bytes = options.bucket_bytes;
    for (size_t i = 0; i < plan.runs.size(); ++i) {
        if (starts[i] == RunStart::finished) continue;
        progress.starting(i, plan.runs[i], starts[i], "");
        records[i] = train_run(plan.runs[i], options.out / plan.runs[i].name, starts[i], train_options);
        progress.done(i, plan.runs[i], records[i], false);
    }
}

// Distributed: the job's ranks form groups of ranks_per_run; each group's first rank (its leader)
// asks rank 0 for a run whenever its group is free, with the record of the run it finished, and
// tells its group. Rank 0 leads a group too: a thread of its own answers the other leaders.
constexpr int kRequestTag = 1, kReplyTag = 2;
constexpr long kNoMoreRuns = -1;

class RunScheduler {
public:
    RunScheduler(const SweepPlan& plan, const std::vector<RunStart>& starts, std::vector<RunRecord>& records,
                 SweepProgress& progress, Communicator channel, int ranks_per_run)
        : plan_(plan), starts_(starts), records_(records), progress_(progress), channel_(std::move(channel)),
          ranks_per_run_(ranks_per_run) {}

    // The next run for the group led by `leader` (-1: none left), after the record of the run it
    // finished (done < 0: none).
    long next(int leader, long done, const RunRecord& record) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (done >= 0) {
            records_[done] = record;
            progress_.done(done, plan_.runs[done], record, true);
        }
        while (next_ < plan_.runs.size() && starts_[next_] == RunStart::finished) ++next_;
        if (next_ == plan_.runs.size()) return kNoMoreRuns;
        const size_t i = next_++;
        progress_.starting(i, plan_.runs[i], starts_[i],
                           ranks_per_run_ == 1 ? fmt::format(" on rank {}", leader)
                                               : fmt::format(" on ranks {}-{}", leader, leader + ranks_per_run_ - 1));
        return static_cast<long>(i);
    }

    // Rank 0's thread: answers the other leaders until each has been told that no run is left.
    void serve(int other_leaders) {
        int released = 0;
        while (released < other_leaders) {
            const auto message = channel_.poll(kRequestTag);
            if (!message) {
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
                continue;
            }
            const nlohmann::json request = nlohmann::json::parse(message->second);
            const long done = request.at("done").get<long>();
            const long run = next(message->first, done, done >= 0 ? RunRecord::from_json(request.at("record")) : RunRecord{});
            if (run == kNoMoreRuns) ++released;
            channel_.send(std::to_string(run), message->first, kReplyTag);
        }
    }

    // A leader other than rank 0 asks.
    static long ask(const Communicator& channel, long done, const RunRecord& record) {
        const nlohmann::json request = {{"done", done}, {"record", record.to_json()}};
        channel.send(request.dump(), 0, kRequestTag);
        return std::stol(channel.receive(0, kReplyTag));
    }

private:
    const SweepPlan& plan_;
    const std::vector<RunStart>& starts_;
    std::vector<RunRecord>& records_;
    SweepProgress& progress_;
    Communicator channel_;
    int ranks_per_run_;
    std::mutex mutex_;
    size_t next_ = 0;
};

void train_distributed(const SweepPlan& plan, const SweepOptions& options, const std::vector<RunStart>& starts,
                       std::vector<RunRecord>& records, SweepProgress& progress) {
    const Communicator& ranks = options.ranks;
    const int R = options.ranks_per_run;
    const Communicator channel = ranks.duplicate();  // the scheduler's messages, apart from the runs' collectives
    const Communicator group = ranks.split(ranks.rank() / R);
    TrainOptions train_options;
    train_options.threads = options.threads;
    train_options.progress = false;  // the scheduler's lines say where each run goes and how it ended
    train_options.ranks = group;
    train_options.bucket_bytes = options.bucket_bytes;
    std::unique_ptr<RunScheduler> scheduler;
    std::thread server;
    if (ranks.is_root()) {
        scheduler = std::make_unique<RunScheduler>(plan, starts, records, progress, channel, R);
        server = std::thread([&] { scheduler->serve(ranks.size() / R - 1); });
    }
    try {
        long done = -1;
        RunRecord record;
        while (true) {
            long run = 0;
            if (group.is_root())
                run = scheduler ? scheduler->next(0, done, record) : RunScheduler::ask(channel, done, record);
            run = group.broadcast(run);
            if (run == kNoMoreRuns) break;
            const SweepRun& r = plan.runs[static_cast<size_t>(run)];
            record = train_run(r, options.out / r.name, starts[static_cast<size_t>(run)], train_options);
            done = run;
        }
    } catch (...) {
        // A failure of this rank alone ends the job (main aborts it): the scheduler's thread goes with it.
        if (server.joinable()) server.detach();
        throw;
    }
    if (server.joinable()) server.join();
}

}  // namespace

nlohmann::json RunRecord::to_json() const {
    auto number = [](const auto& value) { return value ? nlohmann::json(*value) : nlohmann::json(); };
    return {{"status", status},     {"val_loss", number(val_loss)},           {"sink_star", number(sink_star)},
            {"sink1", number(sink1)}, {"massive_ratio", number(massive_ratio)}, {"tokens_per_s", number(tokens_per_s)},
            {"steps", number(steps)}, {"params", number(params)}};
}

RunRecord RunRecord::from_json(const nlohmann::json& j) {
    RunRecord r;
    r.status = j.at("status").get<std::string>();
    auto real = [&](const char* key) { return j.at(key).is_null() ? std::nullopt : std::optional<double>(j.at(key).get<double>()); };
    auto whole = [&](const char* key) { return j.at(key).is_null() ? std::nullopt : std::optional<long>(j.at(key).get<long>()); };
    r.val_loss = real("val_loss");
    r.sink_star = real("sink_star");
    r.sink1 = real("sink1");
    r.massive_ratio = real("massive_ratio");
    r.tokens_per_s = real("tokens_per_s");
    r.steps = whole("steps");
    r.params = whole("params");
    return r;
}

std::string sweep_run_name(const SettingValues& values) {
    std::string name;
    for (const auto& [key, value] : values) name += (name.empty() ? "" : ",") + key + "=" + value;
    if (name.empty()) return "base";
    for (char& c : name) {
        const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                          c == '-' || c == '_' || c == '=' || c == ',' || c == '+';
        if (!safe) c = '_';
    }
    return name;
}

SweepPlan read_sweep(const fs::path& file, const std::map<std::string, std::string>& overrides) {
    const std::string name = file.string();
    const std::string text = read_text_file(file, "sweep");  // a regular file: not a device or FIFO
    toml::table document;
    try {
        document = toml::parse(text, name);
    } catch (const toml::parse_error& e) {
        fail("sweep", "{}:{}:{}: not valid TOML: {}", name, e.source().begin.line, e.source().begin.column,
             e.description());
    }
    const toml::table* base_table = nullptr;
    const toml::table* axes_table = nullptr;
    const toml::array* run_tables = nullptr;
    for (const auto& [key, node] : entries_in_file_order(document)) {
        if (key == "base") {
            base_table = node->as_table();
            SINKLAB_CHECK(base_table, "sweep", "{}: base must be a table, [base]", name);
        } else if (key == "axes") {
            axes_table = node->as_table();
            SINKLAB_CHECK(axes_table, "sweep", "{}: axes must be a table, [axes]", name);
        } else if (key == "runs") {
            run_tables = node->as_array();
            SINKLAB_CHECK(run_tables, "sweep", "{}: runs must be an array of tables, [[runs]]", name);
        } else {
            fail("sweep", "{}: unknown key '{}' (a sweep file has [base], [axes] and [[runs]])", name, key);
        }
    }
    SINKLAB_CHECK((axes_table != nullptr) != (run_tables != nullptr), "sweep",
                  "{}: a sweep has either [axes] (values to combine) or [[runs]] (one table per run), {}", name,
                  axes_table ? "not both" : "and this file has neither");

    // [base] and the command line alone first, so that their errors name them.
    const std::map<std::string, std::string> base = base_table ? read_base(*base_table, name + " [base]")
                                                               : std::map<std::string, std::string>{};
    TrainConfig check = preset_config("tiny");
    apply_settings(check, base, name + " [base]");
    apply_settings(check, overrides, "command line");

    SweepPlan plan;
    plan.file = file;
    // Each run is made and checked in turn, so that a bad value stops the reading at its first run.
    std::optional<AxesPlan> axes;
    std::vector<SettingValues> tables;
    if (axes_table) axes = read_axes(*axes_table, name);
    else tables = read_run_tables(*run_tables, name);
    const size_t count = axes ? axes->count : tables.size();
    for (size_t i = 0; i < count; ++i) {
        SweepRun run;
        run.values = axes ? axes->run(i) : std::move(tables[i]);
        run.name = sweep_run_name(run.values);
        std::map<std::string, std::string> settings = base;
        for (const auto& [key, value] : overrides) settings[setting_key(key, "command line")] = value;
        for (const auto& [key, value] : run.values) {
            settings[key] = value;
            if (std::find(plan.keys.begin(), plan.keys.end(), key) == plan.keys.end()) plan.keys.push_back(key);
        }
        const std::string source = fmt::format("{}, run {} of {} ({})", name, i + 1, count, run.name);
        run.config = preset_config("tiny");
        apply_settings(run.config, settings, source);
        try {
            run.config = prepare_train_config(run.config);
        } catch (const Error& e) {
            throw Error("config", source + ": " + e.what());
        }
        for (size_t j = 0; j < plan.runs.size(); ++j)
            SINKLAB_CHECK(plan.runs[j].name != run.name, "sweep",
                          "{}: runs {} and {} have the same name '{}' (the same values, or values that differ only in "
                          "characters a folder name cannot hold)",
                          name, j + 1, i + 1, run.name);
        plan.runs.push_back(std::move(run));
    }
    return plan;
}

std::optional<RunRecord> read_run_record(const fs::path& run_dir) {
    const RunLog log = read_run_log(run_dir);
    if (!log.end) return std::nullopt;
    const nlohmann::json& end = *log.end;
    RunRecord record;
    record.params = log.params;
    if (end.contains("step")) record.steps = end["step"].get<long>();
    if (end.value("diverged", false)) {
        record.status = fmt::format("diverged at step {}: {}", record.steps.value_or(0), end.value("reason", "?"));
        return record;
    }
    record.status = "ok";
    record.val_loss = number_at(end, "val_loss");
    record.sink_star = number_at(end, "sink_star");
    record.sink1 = number_at(end, "sink1");
    record.massive_ratio = number_at(end, "massive_ratio");
    record.tokens_per_s = number_at(end, "tokens_per_s");
    return record;
}

nlohmann::ordered_json SweepRow::to_json() const {
    auto number = [](const auto& value) { return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(); };
    nlohmann::ordered_json j;
    j["run"] = run;
    for (const auto& [key, value] : values) j[key] = value;
    j["status"] = record.status;
    j["val_loss"] = number(record.val_loss);
    j["sink_star"] = number(record.sink_star);
    j["sink1"] = number(record.sink1);
    j["massive_ratio"] = number(record.massive_ratio);
    j["tokens_per_s"] = number(record.tokens_per_s);
    j["steps"] = number(record.steps);
    j["params"] = number(record.params);
    return j;
}

double unigram_entropy(const std::vector<uint8_t>& bytes) {
    std::vector<long> counts(256, 0);
    for (uint8_t b : bytes) ++counts[b];
    double entropy = 0.0;
    for (long n : counts) {
        if (n == 0) continue;
        const double p = static_cast<double>(n) / static_cast<double>(bytes.size());
        entropy -= p * std::log(p);
    }
    return entropy;
}

SweepResult run_sweep(const SweepPlan& plan, const SweepOptions& options) {
    const Communicator& ranks = options.ranks;
    const size_t n = plan.runs.size();
    const int R = options.ranks_per_run;
    SweepResult result;
    // Everything that can stop the sweep happens before the first run trains, on every rank together.
    const std::vector<RunStart> starts = ranks.agree([&] {
        SINKLAB_CHECK(R >= 1 && ranks.size() % R == 0, "sweep",
                      "--ranks-per-run {} does not divide the {} rank{} of the job: start it with a multiple of {} ranks",
                      R, ranks.size(), ranks.size() == 1 ? "" : "s", R);
        std::vector<RunStart> surveyed;
        for (const SweepRun& run : plan.runs) {
            SINKLAB_CHECK(run.config.batch % R == 0, "sweep",
                          "{}: batch {} does not divide among --ranks-per-run {} (each rank of a run trains on an equal "
                          "share of its batch)",
                          run.name, run.config.batch, R);
            surveyed.push_back(survey_run(run, options.out / run.name));
        }
        if (ranks.is_root())  // rank 0 prints the table
            for (const SweepRun& run : plan.runs) {
                const std::string data = run.config.data.empty() ? default_corpus_path().string() : run.config.data;
                if (!result.unigram_entropy.contains(data))
                    result.unigram_entropy[data] = unigram_entropy(load_byte_corpus(data, run.config.val_fraction).train);
            }
        return surveyed;
    });

    const long to_train = std::count_if(starts.begin(), starts.end(), [](RunStart s) { return s != RunStart::finished; });
    const bool speaks = options.progress && ranks.is_root();
    if (speaks) {
        const std::string where =
            !ranks.distributed() ? ""
            : R == 1             ? fmt::format(" on {} ranks", ranks.size())
                                 : fmt::format(" on {} ranks, {} per run", ranks.size(), R);
        std::fprintf(stderr, "sweep %s: %zu runs in %s, %ld finished earlier, %ld to train%s\n", plan.file.c_str(), n,
                     options.out.c_str(), static_cast<long>(n) - to_train, to_train, where.c_str());
    }
    SweepProgress progress(n, to_train, speaks);
    std::vector<RunRecord> records(n);
    for (size_t i = 0; i < n; ++i)
        if (starts[i] == RunStart::finished && ranks.is_root()) {
            records[i] = *read_run_record(options.out / plan.runs[i].name);
            progress.finished_earlier(i, plan.runs[i], records[i]);
        }
    if (ranks.distributed())
        train_distributed(plan, options, starts, records, progress);
    else
        train_in_order(plan, options, starts, records, progress);
    if (!ranks.is_root()) return result;

    for (size_t i = 0; i < n; ++i) {
        const SweepRun& run = plan.runs[i];
        SweepRow row;
        row.run = run.name;
        for (const std::string& key : plan.keys) {
            const auto it = std::find_if(run.values.begin(), run.values.end(), [&](const auto& kv) { return kv.first == key; });
            row.values.emplace_back(key, it == run.values.end() ? "" : it->second);
        }
        row.record = std::move(records[i]);
        result.rows.push_back(std::move(row));
    }
    return result;
}

}  // namespace sinklab
