import math

from medsynth.quality.correctness import train_oracle
from medsynth.quality.diversity import distinct_n, self_bleu
from medsynth.quality.naturalness import discriminator_auc


def test_self_bleu_orders_diversity():
    same = ["the heart is normal in size and the lungs are clear"] * 20
    varied = [f"patient {i} has finding {i * 7} near zone {i % 5} with {i * 3} nodules and note {i * 11}" for i in range(20)]
    assert self_bleu(same, 20) > 0.9
    assert self_bleu(varied, 20) < self_bleu(same, 20)
    assert math.isnan(self_bleu(["one"], 10))


def test_distinct_n():
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b c"], 2) == 1.0


def test_oracle_agreement_and_discriminator():
    texts = [f"cardiomegaly enlarged heart case {i}" for i in range(30)] + [f"clear lungs normal study case {i}" for i in range(30)]
    labels = [["Cardiomegaly"]] * 30 + [["normal"]] * 30
    o = train_oracle(texts, labels)
    assert o.cv_micro_f1 > 0.9
    agree = o.agreement(["enlarged heart cardiomegaly", "normal clear lungs"], [["Cardiomegaly"], ["Cardiomegaly"]])
    assert agree[0] == 1.0 and agree[1] == 0.0
    real = [f"lungs clear heart normal {i}" for i in range(40)]
    assert discriminator_auc(real, [f"zzz qqq {i}" for i in range(40)]) > 0.9
