#include "lab/run_sources.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "lab/stream_run.h"

namespace sinklab {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kLogFile = "train_log.jsonl";

double number_or_nan(const json& line, const char* key) {
    const auto it = line.find(key);
    return it != line.end() && it->is_number() ? it->get<double>() : std::nan("");
}

bool is_run_folder(const fs::path& dir) {
    std::error_code ec;
    return fs::exists(dir / kLogFile, ec) || fs::exists(dir / "checkpoint" / "config.json", ec) ||
           fs::is_directory(dir / "checkpoints", ec);
}

// The checkpoints/step_N folders that hold a model, by step (a name that is not step_ and digits
// is someone else's folder, left alone).
std::vector<SavedModel> snapshots(const fs::path& run) {
    std::error_code ec;
    std::vector<SavedModel> found;
    if (!fs::is_directory(run / "checkpoints", ec)) return found;
    for (const auto& entry : fs::directory_iterator(run / "checkpoints", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("step_", 0) != 0 || !fs::exists(entry.path() / "model.safetensors", ec)) continue;
        long step = -1;
        const char* digits = name.data() + 5;
        const auto [end, error] = std::from_chars(digits, name.data() + name.size(), step);
        if (error != std::errc() || end != name.data() + name.size() || step < 0) continue;
        found.push_back({step, entry.path()});
    }
    std::sort(found.begin(), found.end(), [](const SavedModel& a, const SavedModel& b) { return a.step < b.step; });
    return found;
}

// The step of checkpoint/ from its trainer_state.json; nullopt when absent or unreadable.
std::optional<long> checkpoint_step(const fs::path& checkpoint) {
    std::ifstream in(checkpoint / "trainer_state.json");
    if (!in) return std::nullopt;
    const json state = json::parse(in, nullptr, false);
    if (state.is_discarded() || !state.is_object() || !state.contains("step") || !state["step"].is_number_integer())
        return std::nullopt;
    const long step = state["step"].get<long>();
    return step >= 0 ? std::optional<long>(step) : std::nullopt;
}

ReportSource run_source(const fs::path& dir, std::string name) {
    ReportSource source{std::move(name), dir, std::nullopt, {}, {}, snapshots(dir)};
    std::error_code ec;
    if (fs::exists(dir / kLogFile, ec)) {
        source.log = read_training_log(dir / kLogFile);
        for (const auto& note : source.log->notes) source.notes.push_back(note);
    } else {
        source.notes.push_back(fmt::format("{}: no {}, so no training curves", dir.string(), kLogFile));
    }
    if (fs::exists(dir / "checkpoint" / "model.safetensors", ec)) {
        source.model = dir / "checkpoint";
        // trainer_state.json's step; a shipped run without it (models/reference) has its log's final step
        std::optional<long> step = checkpoint_step(source.model);
        if (const auto& last = source.log ? source.log->final_evaluation : std::nullopt;
            !step && last && last->contains("step") && last->at("step").is_number_integer() && last->at("step") >= 0)
            step = last->at("step").get<long>();
        if (step && (source.saved.empty() || source.saved.back().step < *step)) source.saved.push_back({*step, source.model});
    } else if (!source.saved.empty()) {
        source.model = source.saved.back().model;
        source.notes.push_back(fmt::format("{}: no checkpoint/ (interrupted before its first evaluation?); probing "
                                           "the latest saved model, {}", dir.string(), source.model.filename().string()));
    } else {
        source.notes.push_back(fmt::format("{}: no checkpoint/ holding a model, so nothing to probe (the run was "
                                           "interrupted before its first evaluation?)", dir.string()));
    }
    return source;
}

// results.json of a sweep ("runs": one object per row) as a table; nullopt when absent or unreadable.
std::optional<Table> read_sweep_table(const fs::path& dir, std::vector<std::string>& notes) {
    std::error_code ec;
    if (!fs::exists(dir / "results.json", ec)) return std::nullopt;
    std::ifstream in(dir / "results.json");
    const json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("runs") || !j["runs"].is_array() || j["runs"].empty() ||
        !j["runs"][0].is_object()) {
        notes.push_back(fmt::format("{}: not a sweep's results (no \"runs\" list); its table is left out",
                                    (dir / "results.json").string()));
        return std::nullopt;
    }
    std::vector<std::string> header;
    for (const auto& [key, value] : j["runs"][0].items()) header.push_back(key);
    Table table(header);
    for (const json& run : j["runs"]) {
        std::vector<std::string> row;
        for (const std::string& key : header) {
            const json v = run.value(key, json());
            row.push_back(v.is_null() ? "" : v.is_string() ? v.get<std::string>() : v.dump());
        }
        table.add_row(std::move(row));
    }
    return table;
}

}  // namespace

TrainingLog read_training_log(const fs::path& file) {
    TrainingLog log;
    std::ifstream in(file);
    std::string line;
    long number = 0, last_step = -1;
    while (std::getline(in, line)) {
        ++number;
        if (line.empty()) continue;
        const json j = json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
            log.notes.push_back(fmt::format("{}: line {} is not JSON (a write cut short by an interrupted run?); "
                                            "skipped", file.string(), number));
            continue;
        }
        if (j.value("event", "") == "start") {
            if (j.contains("config")) log.config = j["config"];
            continue;
        }
        if (j.contains("step") && j["step"].is_number()) last_step = j["step"].get<long>();
        if (j.value("diverged", false)) log.diverged = j.value("reason", "a non-finite loss or gradient");
        if (j.contains("loss") && j["loss"].is_number()) {
            log.steps.push_back(j["step"].get<double>());
            log.losses.push_back(j["loss"].get<double>());
        }
        if (j.contains("val_loss") && j["val_loss"].is_number()) {
            log.eval_steps.push_back(j.value("step", 0.0));
            log.val_losses.push_back(j["val_loss"].get<double>());
            log.sink1.push_back(number_or_nan(j, "sink1"));
            log.massive_ratio.push_back(number_or_nan(j, "massive_ratio"));
            log.alpha1_per_layer.push_back(j.contains("alpha1_per_layer") && j["alpha1_per_layer"].is_array()
                                               ? j["alpha1_per_layer"].get<std::vector<double>>()
                                               : std::vector<double>{});
            if (j.value("final", false)) log.final_evaluation = j;
        }
    }
    if (number == 0) log.notes.push_back(fmt::format("{}: empty", file.string()));
    if (log.diverged)
        log.notes.push_back(fmt::format("{}: the run diverged at step {}: {}", file.string(), last_step, *log.diverged));
    else if (!log.final_evaluation && number > 0)
        log.notes.push_back(fmt::format("{}: no final evaluation, so the run was interrupted or is still training "
                                        "(last step {})", file.string(), std::max(last_step, 0L)));
    return log;
}

ReportSources find_report_sources(const std::vector<fs::path>& paths) {
    ReportSources found;
    std::map<std::string, int> name_uses;
    auto unique_name = [&](std::string name) {
        const int uses = name_uses[name]++;
        return uses == 0 ? name : fmt::format("{} ({})", name, uses + 1);
    };
    for (const fs::path& path : paths) {
        std::error_code ec;
        const std::string shown = path.string();
        const std::string stem = path.filename().empty() ? path.parent_path().filename().string()
                                                         : path.filename().string();
        if (!fs::exists(path, ec)) {
            found.notes.push_back(fmt::format("{}: no such file or folder", shown));
        } else if (fs::is_regular_file(path, ec) && path.extension() == ".json") {
            std::ifstream in(path);
            nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
            if (!j.is_discarded() && is_stream_json(j))
                found.streams.push_back({path, std::move(j)});
            else
                found.notes.push_back(fmt::format("{}: a JSON file that is not the output of `sinklab stream`; skipped",
                                                  shown));
        } else if (fs::is_regular_file(path, ec)) {
            if (path.extension() == ".bin") found.sources.push_back({unique_name(stem), path, std::nullopt, path, {}, {}});
            else found.notes.push_back(fmt::format("{}: a file that is not a llama2.c checkpoint (.bin); skipped", shown));
        } else if (is_run_folder(path)) {
            found.sources.push_back(run_source(path, unique_name(stem)));
        } else if (fs::exists(path / "config.json", ec)) {
            found.sources.push_back({unique_name(stem), path, std::nullopt, path, {}, {}});
        } else {
            std::vector<fs::path> runs;
            for (const auto& entry : fs::directory_iterator(path, ec))
                if (entry.is_directory() && is_run_folder(entry.path())) runs.push_back(entry.path());
            std::sort(runs.begin(), runs.end());
            std::vector<std::string> notes;
            std::optional<Table> table = read_sweep_table(path, notes);
            for (auto& note : notes) found.notes.push_back(std::move(note));
            if (table) found.sweeps.push_back({path, std::move(*table)});
            for (const fs::path& run : runs)
                found.sources.push_back(run_source(run, unique_name(stem + "/" + run.filename().string())));
            if (runs.empty() && !table) {
                bool empty = fs::is_empty(path, ec);
                found.notes.push_back(
                    empty ? fmt::format("{}: an empty folder; nothing to report", shown)
                          : fmt::format("{}: holds no training run (train_log.jsonl, checkpoint/), sweep (runs in "
                                        "subfolders), model folder (config.json) or llama2.c .bin; nothing to report",
                                        shown));
            }
        }
    }
    return found;
}

}  // namespace sinklab
