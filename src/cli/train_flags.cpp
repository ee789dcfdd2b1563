#include "cli/train_flags.h"

#include "train/train_config.h"

namespace sinklab::cli {

namespace {

bool is_boolean_setting(const std::string& key) {
    return key == "bos" || key == "decay-all" || key == "bias" || key == "tied";
}

}  // namespace

void add_train_setting_flags(CLI::App& command, std::map<std::string, std::string>& values) {
    for (const auto& setting : train_settings()) {
        const std::string key = setting.key;
        if (is_boolean_setting(key)) {
            command.add_flag_function("--" + key + ",!--no-" + key,
                                      [&values, key](int64_t count) { values[key] = count > 0 ? "true" : "false"; },
                                      setting.help);
        } else {
            command.add_option_function<std::string>(
                "--" + key, [&values, key](const std::string& v) { values[key] = v; }, setting.help)
                ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a later flag wins
        }
    }
}

}  // namespace sinklab::cli
