#include <rnnbptt/rnnbptt.hpp>
int main() {
  rnnbptt::ModelConfig c; c.input_size = 4; c.hidden_size = 5; c.output_size = 3;
  c.activation = rnnbptt::Activation::identity; c.bias = true;
  rnnbptt::Model<double> m(c); m.init_uniform(0.4, 7);
  auto ck = rnnbptt::Checkpoint<double>::from_model(m);
  ck.sgd = rnnbptt::SgdSettings{0.25, 0.001};
  ck.trainer_json = "{\"note\": \"written by C++\"}";
  rnnbptt::save_checkpoint("v2-cpp-sgd-float64-identity.safetensors", ck);
}
