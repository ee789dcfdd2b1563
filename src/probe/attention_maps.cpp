#include "probe/attention_maps.h"

#include <fmt/format.h>

#include "core/error.h"
#include "metrics/attention_stats.h"
#include "report/png.h"

namespace sinklab {

namespace {

class MapWriter final : public TensorObserver {
public:
    MapWriter(const std::filesystem::path& dir, const AttentionMapOptions& o) : dir_(dir) {
        heatmap_.colormap = o.colormap;
        heatmap_.scale = o.scale;
        heatmap_.max_side = o.max_side;
    }

    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        if (tap != Tap::attn_weights) return;
        const int NH = static_cast<int>(shape[1]), T = static_cast<int>(shape[2]);
        const long plane = static_cast<long>(T) * T;
        for (int h = 0; h < NH; ++h) write(fmt::format("layer{:02d}_head{:02d}", layer, h), data + h * plane, T);
        mean_.resize(plane);
        head_average(mean_.data(), data, NH, plane);
        write(fmt::format("layer{:02d}_head-avg", layer), mean_.data(), T);
    }

    std::vector<std::string> files;

private:
    void write(const std::string& stem, const float* weights, int T) {
        const Heatmap map = render_heatmap(weights, T, T, heatmap_);
        files.push_back(map.file_name(stem));
        write_png(dir_ / files.back(), map.image);
    }

    std::filesystem::path dir_;
    HeatmapOptions heatmap_;
    std::vector<float> mean_;  // (T, T) head average
};

}  // namespace

std::vector<std::string> write_attention_maps(Transformer& model, const int32_t* tokens, int T,
                                              const std::filesystem::path& dir, const AttentionMapOptions& options) {
    const ModelConfig& c = model.config();
    const double layer_bytes = 4.0 * c.n_heads * static_cast<double>(T) * T;
    SINKLAB_CHECK(layer_bytes <= options.max_layer_bytes, "probe",
                  "--maps at --seq-len {} needs one layer's attention weights in memory ({:.1f} GiB for {} heads), more "
                  "than the {:.1f} GiB allowed; draw the maps at a shorter --seq-len",
                  T, layer_bytes / (1L << 30), c.n_heads, options.max_layer_bytes / (1L << 30));
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    SINKLAB_CHECK(!ec, "probe", "--maps {}: cannot create the folder: {}", dir.string(), ec.message());
    MapWriter writer(dir, options);
    ForwardOptions forward;
    forward.training = false;
    forward.observer = &writer;
    forward.attention_kernel = AttentionKernel::materialised;
    model.forward(tokens, nullptr, 1, T, forward);
    return writer.files;
}

}  // namespace sinklab
