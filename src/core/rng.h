#pragma once
// Seeded random numbers: the same seed gives the same bits on every machine (no std::
// distributions, whose output is implementation-defined).
#include <cmath>
#include <cstdint>

namespace sinklab {

class Rng {
public:
    explicit Rng(uint64_t seed = 0) { reseed(seed); }
    void reseed(uint64_t seed) {
        // splitmix64 to fill xoshiro256** state
        uint64_t z = seed;
        for (auto& s : state_) {
            z += 0x9e3779b97f4a7c15ULL;
            uint64_t x = z;
            x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
            x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
            s = x ^ (x >> 31);
        }
        has_spare_ = false;
    }
    uint64_t next_u64() {
        const uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }
    // Uniform in [0, 1).
    double uniform() { return (next_u64() >> 11) * 0x1.0p-53; }
    // Uniform integer in [0, n).
    uint64_t below(uint64_t n) { return static_cast<uint64_t>(uniform() * static_cast<double>(n)); }
    // Standard normal (Box-Muller).
    double normal() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u1 = uniform(), u2 = uniform();
        if (u1 < 1e-300) u1 = 1e-300;
        double r = std::sqrt(-2.0 * std::log(u1));
        spare_ = r * std::sin(2.0 * M_PI * u2);
        has_spare_ = true;
        return r * std::cos(2.0 * M_PI * u2);
    }
    // The complete state, for exact resume.
    struct State {
        uint64_t s[4];
        double spare;
        bool has_spare;
    };
    State state() const { return {{state_[0], state_[1], state_[2], state_[3]}, spare_, has_spare_}; }
    void set_state(const State& st) {
        for (int i = 0; i < 4; ++i) state_[i] = st.s[i];
        spare_ = st.spare;
        has_spare_ = st.has_spare;
    }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t state_[4];
    double spare_ = 0.0;
    bool has_spare_ = false;
};

}  // namespace sinklab
